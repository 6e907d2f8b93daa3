package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvcp-dev/kube-vip-cloud-provider/internal/envvar"
)

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(options) string
		wantErr string
	}{
		{name: "defaults", check: func(o options) string {
			if o.configMap != "kubevip" || o.configMapNamespace != "kube-system" || !o.leaderElect ||
				o.enableLBClass || o.lbClassName != "kube-vip.io/kube-vip-class" || o.leaseName != "kube-vip-cloud-controller" {
				return "unexpected defaults"
			}
			return ""
		}},
		{name: "metrics are secure by default", check: func(o options) string {
			if !o.metricsSecure || o.metricsAddr != ":8443" || o.metricsCertDir != "" || o.healthAddr != ":8081" {
				return "metrics not secure on :8443 by default"
			}
			return ""
		}},
		{name: "environment", env: map[string]string{
			envvar.ConfigMap: "pools", envvar.Namespace: "lb", envvar.EnableLoadBalancerClass: "true", envvar.LoadBalancerClassName: "example.com/lb"},
			check: func(o options) string {
				if o.configMap != "pools" || o.configMapNamespace != "lb" || !o.enableLBClass || o.lbClassName != "example.com/lb" {
					return "environment not honoured"
				}
				return ""
			}},
		{name: "flags win over environment", env: map[string]string{envvar.ConfigMap: "pools"},
			args: []string{"--config-map=other", "--config-map-namespace=ns", "--leader-elect=false", "--workers=2"},
			check: func(o options) string {
				if o.configMap != "other" || o.configMapNamespace != "ns" || o.leaderElect || o.workers != 2 {
					return "flags not honoured"
				}
				return ""
			}},
		{name: "the existing provider's flag spellings", args: []string{"--leader-elect-resource-name=kvcp", "--concurrent-service-syncs=3"},
			check: func(o options) string {
				if o.leaseName != "kvcp" || o.workers != 3 {
					return "aliases not honoured"
				}
				return ""
			}},
		{name: "the Lease follows the ConfigMap's namespace by default", args: []string{"--config-map-namespace=lb"},
			check: func(o options) string {
				if o.leaseNamespace != "lb" {
					return "lease namespace does not follow the ConfigMap's"
				}
				return ""
			}},
		{name: "the Lease's own namespace", args: []string{"--config-map-namespace=lb", "--leader-elect-resource-namespace=kube-system"},
			check: func(o options) string {
				if o.leaseNamespace != "kube-system" || o.configMapNamespace != "lb" {
					return "--leader-elect-resource-namespace not honoured"
				}
				return ""
			}},
		{name: "cloud-controller-manager flags are accepted and ignored",
			args: []string{"--cloud-provider=kube-vip", "--secure-port=10258", "--bind-address=0.0.0.0", "--controllers=*,-route",
				"--authentication-skip-lookup", "--use-service-account-credentials=true", "--leader-elect-resource-lock=leases", "--OutSideCluster",
				"--authentication-kubeconfig=/etc/kubernetes/ccm.conf", "--authorization-kubeconfig=/etc/kubernetes/ccm.conf", "--node-monitor-period=10s"},
			check: func(o options) string {
				if !o.outsideCluster || o.configMap != "kubevip" {
					return "compatibility flags changed something"
				}
				return ""
			}},
		{name: "the cloud-controller-manager flags we honour",
			args: []string{"--master=https://api.example:6443", "--kube-api-content-type=application/vnd.kubernetes.protobuf",
				"--kube-api-qps=50", "--kube-api-burst=100", "--profiling", "--contention-profiling", "--leader-elect-resource-namespace=lb"},
			check: func(o options) string {
				if o.master != "https://api.example:6443" || o.contentType != "application/vnd.kubernetes.protobuf" ||
					o.qps != 50 || o.burst != 100 || !o.profiling || !o.contentionProfiling || o.leaseNamespace != "lb" {
					return "honoured flags not honoured"
				}
				return ""
			}},
		{name: "klog's flags", args: []string{"-v=0", "--vmodule=", "--logtostderr=true", "--log_dir="},
			check: func(o options) string {
				if o.configMap != "kubevip" {
					return "klog's flags changed something"
				}
				return ""
			}},
		{name: "another content type", args: []string{"--kube-api-content-type=text/plain"}, wantErr: "--kube-api-content-type"},
		{name: "another lock kind", args: []string{"--leader-elect-resource-lock=configmaps"}, wantErr: "leader-elect-resource-lock"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantErr: "no-such-flag"},
		{name: "bad boolean in environment", env: map[string]string{envvar.EnableLoadBalancerClass: "yes please"}, wantErr: envvar.EnableLoadBalancerClass},
		{name: "no workers", args: []string{"--workers=0"}, wantErr: "--workers"},
		{name: "no qps", args: []string{"--kube-api-qps=0"}, wantErr: "--kube-api-qps"},
		{name: "a certificate for plain HTTP", args: []string{"--metrics-secure=false", "--metrics-cert-dir=/certs"}, wantErr: "--metrics-cert-dir"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := parseFlags(tc.args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(o); msg != "" {
				t.Fatalf("%s: %+v", msg, o)
			}
		})
	}
}

func TestRestConfigOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, server string) string {
		p := filepath.Join(dir, name)
		kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: " + server + "}\n" +
			"contexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: t}\ncurrent-context: c\n"
		if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile, envFile := write("flag", "https://flag.example:6443"), write("env", "https://env.example:6443")
	inCluster := map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
	tests := []struct {
		name    string
		path    string
		master  string
		outside bool
		env     map[string]string
		want    string // server, or an error substring
	}{
		{"--kubeconfig wins over everything", flagFile, "", false, map[string]string{"KUBECONFIG": envFile, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "https://flag.example:6443"},
		{"$KUBECONFIG wins over in-cluster", "", "", false, map[string]string{"KUBECONFIG": envFile, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "https://env.example:6443"},
		{"in-cluster without $KUBECONFIG", "", "", false, inCluster, "serviceaccount"},
		{"--OutSideCluster skips in-cluster", "", "", true, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOME": dir}, "--OutSideCluster: no kubeconfig"},
		{"--OutSideCluster reads $KUBECONFIG", "", "", true, map[string]string{"KUBECONFIG": envFile, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "https://env.example:6443"},
		{"--master overrides --kubeconfig's server", flagFile, "https://master.example:6443", false, nil, "https://master.example:6443"},
		{"--master overrides $KUBECONFIG's server", "", "https://master.example:6443", false, map[string]string{"KUBECONFIG": envFile}, "https://master.example:6443"},
		{"--master alone, outside the cluster", "", "https://master.example:6443", true, map[string]string{"HOME": dir}, "https://master.example:6443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "HOME"} {
				t.Setenv(k, tc.env[k])
			}
			cfg, err := restConfig(tc.path, tc.master, tc.outside, func(k string) string { return tc.env[k] })
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = cfg.Host
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
