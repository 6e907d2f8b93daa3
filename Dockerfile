# The controller's image: the static binary `make image` builds (CGO off),
# on an empty base, running as a non-root user. Nothing is pulled, so it
# builds where no registry is reachable. Build it with `make image`.
FROM scratch
COPY bin/kube-vip-cloud-provider /kube-vip-cloud-provider
USER 65532:65532
ENTRYPOINT ["/kube-vip-cloud-provider"]
