package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCertReloaderFollowsTheFiles renews the files of --metrics-cert-dir:
// the new pair is served; a broken renewal keeps the last good one.
func TestCertReloaderFollowsTheFiles(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	cfg, err := metricsTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	writeCert(t, dir)
	second, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Fatal("the renewed certificate is not served")
	}
	if err := os.WriteFile(filepath.Join(dir, certFile), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := cfg.GetCertificate(nil)
	if err != nil || !bytes.Equal(third.Certificate[0], second.Certificate[0]) {
		t.Fatalf("a broken renewal: %v, want the last good certificate", err)
	}
	if _, err := metricsTLSConfig(t.TempDir()); err == nil {
		t.Fatal("a directory without tls.crt and tls.key was accepted")
	}
}

// TestSelfSignedCertificate is valid now, for localhost, for a year.
func TestSelfSignedCertificate(t *testing.T) {
	cfg, err := metricsTLSConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.MinVersion < 0x0303 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Fatalf("TLS config %+v", cfg)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if now := time.Now(); now.Before(leaf.NotBefore) || leaf.NotAfter.Before(now.Add(300*24*time.Hour)) {
		t.Errorf("valid from %v to %v", leaf.NotBefore, leaf.NotAfter)
	}
}
