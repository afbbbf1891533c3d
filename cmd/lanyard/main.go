// Command lanyard runs the Lanyard identity service and its maintenance
// commands. main only wires the process to run, which tests call directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lanyard-id/lanyard/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var cfgErr *config.Error
		if errors.As(err, &cfgErr) {
			fmt.Fprintln(os.Stderr, "lanyard: configuration error:", cfgErr)
		} else {
			fmt.Fprintln(os.Stderr, "lanyard:", err)
		}
		os.Exit(1)
	}
}
