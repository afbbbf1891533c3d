// Command corpus serves the shared token corpus for the backend examples.
//
// It builds the corpus of access tokens (good ones and every way of getting one
// wrong) with internal/tokentest, serves the corpus's public keys at
// http://127.0.0.1:<port>/.well-known/jwks.json, writes the corpus plus
// "jwks_url" to the -out file, and prints one line to stdout:
//
//	ready http://127.0.0.1:<port>/.well-known/jwks.json
//
// Verifiers under test point at that JWKS URL with the corpus's issuer,
// audience and algorithms, and must accept exactly the cases marked "accept".
//
// It serves until SIGINT or SIGTERM, until its standard input closes (so it
// ends with the script that started it, even one killed without a trap; pass
// -stdin=false to ignore stdin), or after -max, whichever comes first.
//
//	go run ./examples/corpus -out /tmp/corpus.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lanyard-id/lanyard/internal/tokentest"
)

const (
	corpusIssuer   = "https://corpus.lanyard.test"
	corpusAudience = "lanyard-corpus"
	jwksPath       = "/.well-known/jwks.json"
)

var errMaxReached = errors.New("-max reached")

// output is the file written with -out: the corpus and where its keys are served.
type output struct {
	*tokentest.Corpus
	JWKSURL string `json:"jwks_url"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "", "write the corpus JSON (with jwks_url) to this file (required)")
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to serve the JWKS on (port 0: any free port)")
	maxLife := flag.Duration("max", 10*time.Minute, "exit by itself after this long")
	watchStdin := flag.Bool("stdin", true, "exit when standard input closes")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		return errors.New("-out is required and no arguments are taken")
	}
	if *maxLife <= 0 {
		return errors.New("-max must be positive")
	}
	if err := requireLoopback(*addr); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	corpus, err := tokentest.NewCorpus(corpusIssuer, corpusAudience, time.Now())
	if err != nil {
		return fmt.Errorf("build the corpus: %w", err)
	}
	jwks := []byte(corpus.JWKS)
	if !json.Valid(jwks) {
		return errors.New("the corpus's JWKS is not valid JSON")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	jwksURL := "http://" + ln.Addr().String() + jwksPath

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.Write(jwks) //nolint:errcheck // nothing to do about a client that went away
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if err := writeFile(*out, output{Corpus: corpus, JWKSURL: jwksURL}); err != nil {
		srv.Close() //nolint:errcheck // exiting anyway
		return err
	}
	log.Info("serving the token corpus", "jwks_url", jwksURL, "out", *out, "cases", len(corpus.Cases), "max", maxLife.String())
	fmt.Printf("ready %s\n", jwksURL)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, *maxLife, errMaxReached)
	defer cancel()
	stdinClosed := make(chan struct{})
	if *watchStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin) //nolint:errcheck // EOF or an error both mean the parent is gone
			close(stdinClosed)
		}()
	}

	reason := "signal"
	select {
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), errMaxReached) {
			reason = errMaxReached.Error()
		}
	case <-stdinClosed:
		reason = "stdin closed"
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopping", "reason", reason)
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	return srv.Shutdown(shutdownCtx)
}

// requireLoopback refuses to listen anywhere but on this machine.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only loopback addresses (127.0.0.0/8, [::1]) are allowed", addr)
	}
	return nil
}

// writeFile writes v as JSON to path atomically, so a reader never sees half a corpus.
func writeFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".corpus-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close() //nolint:errcheck // the write error is the one to report
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
