package labca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Each lab has a certificate authority of its own, made in memory when the
// lab starts and gone with it, so that `curl https://` to a lab host as an
// allowed user completes its handshake instead of hanging like a drop. The
// lab's trust store holds this CA alone: nothing beyond the lab is reachable
// from inside it, so nothing else needs trusting there.

// EtcName is the trust store's name under /etc, as Debian's
// ca-certificates and OpenSSL's default CA file have it.
const EtcName = "ssl/certs/ca-certificates.crt"

// Env points OpenSSL, Go and curl at the lab's trust store, EtcName under
// etcDir (the lab's own /etc files, in its private /run: there whether or not
// the host has /etc/ssl/certs/ca-certificates.crt to overlay); every process
// the lab starts has it.
func Env(etcDir string) []string {
	file := etcDir + "/" + EtcName
	return []string{"SSL_CERT_FILE=" + file, "CURL_CA_BUNDLE=" + file}
}

// CA is one lab's certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte

	mu     sync.Mutex
	leaves map[string]*tls.Certificate // by server name or address
}

// New makes the CA of the lab called lab.
func New(lab string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make the lab's CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "egresslab lab " + lab + " CA", Organization: []string{"egresslab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("make the lab's CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		leaves: map[string]*tls.Certificate{}}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// TLSConfig serves, for each connection, a certificate for the name the
// client asked for (SNI), or for the address it dialled when it named none.
func (ca *CA) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				if a, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
					name = a.AddrPort().Addr().Unmap().String()
				}
			}
			return ca.leaf(name)
		},
	}
}

// leaf is a certificate for name (a DNS name or an address), made once.
func (ca *CA) leaf(name string) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.leaves[name]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    ca.cert.NotBefore,
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(name); err == nil {
		tmpl.IPAddresses = []net.IP{a.AsSlice()}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("make a certificate for %s: %w", name, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ca.leaves[name] = c
	return c, nil
}

// PEM is the CA's certificate, PEM-encoded.
func (ca *CA) PEM() []byte { return ca.pem }
