// Command floor is the JWKS benchmark's floor: a bare net/http server that
// writes one fixed byte slice (Lanyard's own JWKS, read from -body) with the
// same Content-Type and Cache-Control as Lanyard, and nothing else. It listens
// on loopback only. With -free-port it prints a free loopback port and exits
// (run.sh uses it to pick ports).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	port := flag.Int("port", 0, "loopback port to listen on")
	bodyPath := flag.String("body", "", "file holding the exact response bytes")
	freePort := flag.Bool("free-port", false, "print a free loopback port and exit")
	flag.Parse()

	if *freePort {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		return
	}
	if *port <= 0 || *bodyPath == "" {
		log.Fatal("usage: floor -port N -body FILE")
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		log.Fatal(err)
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", *port), Handler: handler}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		_ = srv.Close()
	}()
	log.Printf("floor listening on %s (%d-byte body)", srv.Addr, len(body))
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
