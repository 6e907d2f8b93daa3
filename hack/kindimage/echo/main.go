// Command echo is the backend behind every Service the kind e2e reaches:
// an HTTP server answering GET /hostname with the pod's name, so that a
// request through a load-balancer address shows which pod served it.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	listen := flag.String("listen", ":8080", "address to serve HTTP on")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		log.Fatalf("echo: hostname: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hostname", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, host)
	})
	log.Printf("echo: %s serving GET /hostname on %s", host, *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
