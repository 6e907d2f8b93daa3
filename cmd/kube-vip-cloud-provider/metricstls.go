package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// The files of --metrics-cert-dir, as a kubernetes.io/tls Secret names them.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// metricsTLSConfig is the TLS configuration of /metrics: the certificate
// and key of certDir (read again whenever they change, e.g. when
// cert-manager renews them), or with an empty certDir a self-signed
// certificate made in memory. HTTP/2 is not offered (as in
// controller-runtime: it exposes the server to the HTTP/2 rapid reset and
// stream attacks, and a scrape gains nothing from it).
func metricsTLSConfig(certDir string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if certDir == "" {
		cert, err := selfSignedCertificate(time.Now())
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
		return cfg, nil
	}
	r := &certReloader{cert: filepath.Join(certDir, certFile), key: filepath.Join(certDir, keyFile)}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() }
	return cfg, nil
}

// selfSignedCertificate is a certificate for /metrics valid for a year from
// now, for localhost and the host's name, signed by its own key.
func selfSignedCertificate(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate the metrics key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate a serial number: %w", err)
	}
	names := []string{"localhost"}
	if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
		names = append(names, host)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: programName + "-metrics"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create the self-signed metrics certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// certReloader serves a certificate and key from files, read again when
// either file's modification time or size changes.
type certReloader struct {
	cert, key string

	mu      sync.Mutex
	stamp   string
	current *tls.Certificate
}

func (r *certReloader) get() (*tls.Certificate, error) {
	stamp, err := fileStamp(r.cert, r.key)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && stamp == r.stamp && r.current != nil {
		return r.current, nil
	}
	if err == nil {
		var c tls.Certificate
		c, err = tls.LoadX509KeyPair(r.cert, r.key)
		if err == nil {
			r.current, r.stamp = &c, stamp
			return r.current, nil
		}
	}
	if r.current == nil {
		return nil, fmt.Errorf("load the metrics certificate: %w", err)
	}
	// A half-written renewal: keep serving the last good pair.
	klog.ErrorS(err, "Cannot load the new metrics certificate: serving the previous one", "cert", r.cert, "key", r.key)
	return r.current, nil
}

// fileStamp identifies the current version of the files.
func fileStamp(paths ...string) (string, error) {
	s := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("metrics certificate: %w", err)
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}
