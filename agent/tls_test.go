package agent_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// testCA issues certificates for the tests and writes them as PEM files.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key}
	ca.write("ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

// issue writes name.pem and name-key.pem, a certificate for 127.0.0.1
// with the given serial.
func (ca *testCA) issue(name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return ca.write(name+".pem", "CERTIFICATE", der), ca.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

// The HTTPS API: HashiCorp's client reads it with the CA; with
// verify_incoming a client without a certificate is refused and one with
// is served; a reload takes a renewed certificate.
func TestHTTPS(t *testing.T) {
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue("server", 10, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue("client", 20, x509.ExtKeyUsageClientAuth)
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		cfg.HTTPSAddr = "127.0.0.1:0"
		cfg.TLS = agent.TLSFiles{CertFile: srvCert, KeyFile: srvKey, CAFile: filepath.Join(ca.dir, "ca.pem"), VerifyIncoming: true}
	}
	n := c.Start("node-0", 0)
	client := func(withCert bool) *consul.Client {
		cfg := consul.DefaultConfig()
		cfg.Address, cfg.Scheme = n.Agent.HTTPSAddr(), "https"
		cfg.TLSConfig = consul.TLSConfig{CAFile: filepath.Join(ca.dir, "ca.pem")}
		if withCert {
			cfg.TLSConfig.CertFile, cfg.TLSConfig.KeyFile = cliCert, cliKey
		}
		cl, err := consul.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	if _, err := client(true).Agent().Self(); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if _, err := client(false).Agent().Self(); err == nil {
		t.Fatal("verify_incoming let a client without a certificate in")
	}
	serial := func() int64 {
		conn, err := tls.Dial("tcp", n.Agent.HTTPSAddr(), &tls.Config{InsecureSkipVerify: true, Certificates: mustPair(t, cliCert, cliKey)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 10 {
		t.Fatalf("serial %d", s)
	}
	ca.issue("server", 11, x509.ExtKeyUsageServerAuth) // renewed in place
	if err := n.Agent.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 11 {
		t.Fatalf("after the reload the agent serves serial %d, want 11", s)
	}
	// The plain HTTP API still answers.
	resp, err := http.Get("http://" + n.Agent.HTTPAddr() + "/v1/status/leader")
	if err != nil {
		t.Fatalf("plain HTTP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain HTTP: %d", resp.StatusCode)
	}
}

func mustPair(t *testing.T, cert, key string) []tls.Certificate {
	p, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return []tls.Certificate{p}
}
