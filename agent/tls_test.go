package agent_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/internal/testutil"
)

// The HTTPS API: HashiCorp's client reads it with the CA; with
// verify_incoming a client without a certificate is refused and one with
// is served; a reload takes a renewed certificate.
func TestHTTPS(t *testing.T) {
	ca := testutil.NewCA(t)
	c := testutil.NewEmptyCluster(t)
	cliCert, cliKey := ca.ServeHTTPS(c)
	n := c.Start("node-0", 0)
	client := func(withCert bool) *consul.Client {
		cfg := consul.DefaultConfig()
		cfg.Address, cfg.Scheme = n.Agent.HTTPSAddr(), "https"
		cfg.TLSConfig = consul.TLSConfig{CAFile: ca.CAFile()}
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
	ca.Issue("server", 11, x509.ExtKeyUsageServerAuth) // renewed in place
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
