package main

import (
	"flag"
	"strings"
	"testing"
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
		{name: "environment", env: map[string]string{
			EnvConfigMap: "pools", EnvNamespace: "lb", EnvEnableLoadBalancerClass: "true", EnvLoadBalancerClassName: "example.com/lb"},
			check: func(o options) string {
				if o.configMap != "pools" || o.configMapNamespace != "lb" || !o.enableLBClass || o.lbClassName != "example.com/lb" {
					return "environment not honoured"
				}
				return ""
			}},
		{name: "flags win over environment", env: map[string]string{EnvConfigMap: "pools"},
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
		{name: "bad boolean in environment", env: map[string]string{EnvEnableLoadBalancerClass: "yes please"}, wantErr: EnvEnableLoadBalancerClass},
		{name: "no workers", args: []string{"--workers=0"}, wantErr: "--workers"},
		{name: "no qps", args: []string{"--kube-api-qps=0"}, wantErr: "--kube-api-qps"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o, err := parseFlags(fs, tc.args, func(k string) string { return tc.env[k] })
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
