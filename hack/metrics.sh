#!/usr/bin/env bash
# Scrapes the /metrics of make run's controller as Prometheus would: with
# the token of a ServiceAccount bound to a ClusterRole that may get the
# non-resource URL /metrics (the controller asks the API server whether the
# token may), over HTTPS (a self-signed certificate: -k). Prints the
# controller's own series.
#   KUBECONFIG          the cluster (default: make run's, .run/kubeconfig)
#   METRICS_ADDRESS     the endpoint (default: make run's, 127.0.0.1:8443)
set -euo pipefail

export KUBECONFIG="${KUBECONFIG:-$PWD/.run/kubeconfig}"
addr="${METRICS_ADDRESS:-127.0.0.1:8443}"
[ -f "$KUBECONFIG" ] || { echo "make metrics: no kubeconfig at $KUBECONFIG: start make run first" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "make metrics: kubectl is not on your PATH (hack/kubectl.sh builds one)" >&2; exit 1; }
command -v curl >/dev/null || { echo "make metrics: curl is not installed (Debian: apt-get install curl)" >&2; exit 1; }

# The same ClusterRole as the manifest's; the ServiceAccount and binding
# are this script's own. apply: a second run changes nothing.
kubectl create clusterrole kube-vip-cloud-provider-metrics-reader --verb=get --non-resource-url=/metrics \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create serviceaccount -n default metrics-scraper --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create clusterrolebinding metrics-scraper --clusterrole=kube-vip-cloud-provider-metrics-reader \
  --serviceaccount=default:metrics-scraper --dry-run=client -o yaml | kubectl apply -f - >/dev/null
token="$(kubectl create token -n default metrics-scraper --duration=10m)"
body="$(curl -sS -k --fail-with-body -H "Authorization: Bearer $token" "https://$addr/metrics")" || {
  echo "make metrics: GET https://$addr/metrics failed: $body" >&2
  exit 1
}
grep '^kube_vip_cloud_provider_' <<<"$body"
