package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// TLSFiles are the certificate files of the HTTPS API, as Consul's
// tls.defaults (or its older top-level keys) name them.
type TLSFiles struct {
	CertFile, KeyFile string
	// CAFile holds the CAs client certificates must chain to; with
	// VerifyIncoming a client without such a certificate is refused.
	CAFile         string
	VerifyIncoming bool
}

// tlsMaterial is what the files held when last loaded.
type tlsMaterial struct {
	cert *tls.Certificate
	cas  *x509.CertPool
}

// loadTLS reads the files; errors name the file.
func loadTLS(f TLSFiles) (*tlsMaterial, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("https: cert_file and key_file are both needed")
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("https: cert_file %s, key_file %s: %w", f.CertFile, f.KeyFile, err)
	}
	m := &tlsMaterial{cert: &cert}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("https: ca_file: %w", err)
		}
		m.cas = x509.NewCertPool()
		if !m.cas.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("https: ca_file %s: no PEM certificate in it", f.CAFile)
		}
	} else if f.VerifyIncoming {
		return nil, errors.New("https: verify_incoming needs ca_file, the CAs client certificates must chain to")
	}
	return m, nil
}

// tlsConfig serves the material in force (a reload swaps it).
func tlsConfig(cur *atomic.Pointer[tlsMaterial], verify bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := cur.Load()
			c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*m.cert}, ClientCAs: m.cas}
			switch {
			case verify:
				c.ClientAuth = tls.RequireAndVerifyClientCert
			case m.cas != nil:
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
			return c, nil
		},
	}
}
