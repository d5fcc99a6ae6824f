// Command cloudtasks-emulator serves the taskstest Cloud Tasks emulator on a
// fixed address, for the local stack and for anyone pointing the official
// client at it (option.WithEndpoint, option.WithoutAuthentication and
// insecure gRPC transport credentials: the client reads no emulator variable).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/emulators/taskstest"
)

func main() {
	hostPort := flag.String("host-port", "127.0.0.1:8123", "address to listen on (loopback by default)")
	tombstone := flag.Duration("tombstone-ttl", time.Hour, "how long the name of a deleted or executed task stays reserved")
	minDeadline := flag.Duration("min-dispatch-deadline", 15*time.Second, "smallest dispatch_deadline accepted (Cloud Tasks: 15s)")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv, err := taskstest.NewServerWithAddress(*hostPort,
		taskstest.WithTombstoneTTL(*tombstone),
		taskstest.WithDispatchDeadlineBounds(*minDeadline, 30*time.Minute),
		taskstest.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudtasks-emulator: %v\n", err)
		os.Exit(1)
	}
	logger.Info("Cloud Tasks emulator listening", "addr", srv.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
	logger.Info("Cloud Tasks emulator stopped")
}
