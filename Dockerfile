# Static binary on distroless: no shell, non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/kube-vip-cloud-provider ./cmd/kube-vip-cloud-provider

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kube-vip-cloud-provider /kube-vip-cloud-provider
USER 65532:65532
ENTRYPOINT ["/kube-vip-cloud-provider"]
