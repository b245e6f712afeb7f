package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
)

// CA issues certificates for tests and writes them as PEM files in Dir;
// its own certificate is Dir/ca.pem (CAFile).
type CA struct {
	t    testing.TB
	Dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid for an hour around now.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{t: t, Dir: t.TempDir(), cert: cert, key: key}
	ca.write("ca.pem", "CERTIFICATE", der)
	return ca
}

// CAFile is the CA's certificate.
func (ca *CA) CAFile() string { return filepath.Join(ca.Dir, "ca.pem") }

func (ca *CA) write(name, typ string, der []byte) string {
	p := filepath.Join(ca.Dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// Issue writes name.pem and name-key.pem, a certificate for 127.0.0.1
// with the given serial and usage.
func (ca *CA) Issue(name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return ca.write(name+".pem", "CERTIFICATE", der), ca.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

// ServeHTTPS makes the agents c starts serve HTTPS on a port of their own
// with a server certificate of this CA (server.pem, serial 10), requiring
// client certificates of it, and returns a client certificate (serial 20)
// and its key.
func (ca *CA) ServeHTTPS(c *Cluster) (clientCert, clientKey string) {
	ca.t.Helper()
	srvCert, srvKey := ca.Issue("server", 10, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = ca.Issue("client", 20, x509.ExtKeyUsageClientAuth)
	c.Configure = func(cfg *agent.Config) {
		cfg.HTTPSAddr = "127.0.0.1:0"
		cfg.TLS = agent.TLSFiles{CertFile: srvCert, KeyFile: srvKey, CAFile: ca.CAFile(), VerifyIncoming: true}
	}
	return clientCert, clientKey
}
