package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kvcp-dev/kube-vip-cloud-provider/manifest"
)

// metricsReader is the manifest's ClusterRole for scrapers.
const metricsReader = "kube-vip-cloud-provider-metrics-reader"

// saToken creates the ServiceAccount default/name and returns a token of it.
func saToken(t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := client.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// createReaderRole creates the manifest's metrics reader ClusterRole and
// binds it to the ServiceAccount default/sa.
func createReaderRole(t *testing.T, client kubernetes.Interface, sa string) {
	t.Helper()
	ctx := context.Background()
	objs, err := manifest.Objects(manifest.CloudController)
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && u.GetName() == metricsReader {
			role = &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role == nil {
		t.Fatalf("the manifest has no ClusterRole %s", metricsReader)
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: metricsReader},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// scrape gets url with the bearer token (none if empty) and returns the
// status and body; a failed request is status 0 and the error.
func scrape(c *http.Client, method, url, token string) (int, string) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAreServedSecurely runs the binary against a real API server
// and scrapes /metrics: over HTTPS, only with the token of a
// ServiceAccount bound to the manifest's reader ClusterRole; over plain
// HTTP to anyone with --metrics-secure=false; with the certificate of
// --metrics-cert-dir when given.
func TestMetricsAreServedSecurely(t *testing.T) {
	client, kubeconfig := startEnv(t)
	bin := buildBinary(t)
	createReaderRole(t, client, "scraper")
	reader := saToken(t, client, "scraper")
	nobody := saToken(t, client, "nobody")
	insecure := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	t.Run("secure by default", func(t *testing.T) {
		addr := freePort(t)
		r := startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect=false", "--metrics-bind-address="+addr)
		url := "https://" + addr + "/metrics"
		eventually(t, 30*time.Second, "the metrics served to the reader", func() (bool, string) {
			code, body := scrape(insecure, http.MethodGet, url, reader)
			return code == http.StatusOK && strings.Contains(body, "kube_vip_cloud_provider_"), body
		})
		for _, c := range []struct {
			what, method, token string
			want                int
		}{
			{"no token", http.MethodGet, "", http.StatusUnauthorized},
			{"a token the API server does not know", http.MethodGet, "not-a-token", http.StatusUnauthorized},
			{"a ServiceAccount without the reader role", http.MethodGet, nobody, http.StatusForbidden},
			{"the reader, again (cached)", http.MethodGet, reader, http.StatusOK},
			{"the reader, POST", http.MethodPost, reader, http.StatusMethodNotAllowed},
		} {
			code, body := scrape(insecure, c.method, url, c.token)
			if code != c.want {
				t.Errorf("%s: %d %q, want %d", c.what, code, body, c.want)
			}
			if code != http.StatusOK && strings.Contains(body, "kube_vip_cloud_provider_") {
				t.Errorf("%s: refused, yet given the metrics", c.what)
			}
		}
		if code, body := scrape(insecure, http.MethodGet, "http://"+addr+"/metrics", reader); code == http.StatusOK {
			t.Errorf("plain HTTP served the metrics: %q", body)
		}
		// The self-signed certificate names localhost.
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		cert := conn.ConnectionState().PeerCertificates[0]
		_ = conn.Close()
		if err := cert.VerifyHostname("localhost"); err != nil {
			t.Errorf("self-signed certificate: %v", err)
		}
		// Health probes stay plain HTTP.
		if code, body := r.get("/healthz"); code != http.StatusOK {
			t.Errorf("/healthz over plain HTTP: %d %s", code, body)
		}
	})

	t.Run("--metrics-secure=false", func(t *testing.T) {
		addr := freePort(t)
		startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect=false", "--metrics-bind-address="+addr, "--metrics-secure=false")
		eventually(t, 30*time.Second, "plain metrics without a token", func() (bool, string) {
			code, body := scrape(insecure, http.MethodGet, "http://"+addr+"/metrics", "")
			return code == http.StatusOK && strings.Contains(body, "kube_vip_cloud_provider_"), body
		})
	})

	t.Run("--metrics-cert-dir", func(t *testing.T) {
		dir := t.TempDir()
		pool := writeCert(t, dir)
		addr := freePort(t)
		startBinary(t, bin, "--kubeconfig="+kubeconfig, "--leader-elect=false", "--metrics-bind-address="+addr, "--metrics-cert-dir="+dir)
		verified := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "metrics.example"}}}
		eventually(t, 30*time.Second, "the metrics over the given certificate", func() (bool, string) {
			code, body := scrape(verified, http.MethodGet, "https://"+addr+"/metrics", reader)
			return code == http.StatusOK && strings.Contains(body, "kube_vip_cloud_provider_"), body
		})
	})
}

// writeCert writes a self-signed tls.crt and tls.key for metrics.example
// into dir and returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metrics.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: []string{"metrics.example"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
