// Command devhost is the local function host: it serves every imgpipe
// function on one port through functions-framework-go (each at its own path)
// and wires the emulators to it as production is wired — the images topic's
// push subscription to the CloudEvent function, the webhook queue, the bucket,
// and a sweep every minute in place of the Cloud Scheduler job.
// `make dev` runs it with the emulators' variables set.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/config"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve the functions on")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the host to this file until it stops")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "devhost: -cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*addr); err != nil {
		logger.Error("devhost failed", "error", err.Error())
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx := context.Background()
	localstack.LocalDefaults("http://" + addr)
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("config.Load: %w", err)
	}
	base, err := localstack.StartHost(ctx, addr)
	if err != nil {
		return err
	}
	w := localstack.ProductionWiring(cfg, base)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := localstack.Wire(wctx, w); err != nil {
		return fmt.Errorf("localstack.Wire: %w", err)
	}
	key, err := localstack.DevKey(ctx, cfg.Project, "make dev")
	if err != nil {
		return fmt.Errorf("localstack.DevKey: %w", err)
	}
	fmt.Printf(`
imgpipe is running locally.
  API key          %[9]s  (send as X-API-Key or Authorization: Bearer)
  API              %[1]s/api  (POST /api/upload, GET /api/status/{id}, GET /api/report/{id})
  compress push    %[2]s
  dead letters     %[3]s
  bucket           %[4]s  (objects: %[5]s/download/storage/v1/b/%[4]s/o/NAME?alt=media)
  webhook queue    %[6]s  (Cloud Tasks emulator at %[7]s)
  webhook secret   %[8]s  (verify deliveries with it)
  sweep            %[10]s  (every minute: requests without progress for IMGPIPE_STALL_AFTER)
Ctrl-C stops everything.
`, base, w.Pushes[0].Endpoint, w.Pushes[1].Endpoint, cfg.Bucket,
		os.Getenv("STORAGE_EMULATOR_HOST"), cfg.QueueName(), cfg.TasksEmulatorHost, cfg.WebhookSecrets[0], key, cfg.SweepURL)

	sweeps, stop := context.WithCancel(ctx)
	defer stop()
	go localstack.RunSweeps(sweeps, cfg, time.Minute, slog.New(slog.NewJSONHandler(os.Stderr, nil)))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	// What this host asked of the cloud, counted at its clients (the
	// pipeline benchmark divides it by images).
	if u, err := functions.ProcessUsage(); err == nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Info("usage", "usage", u)
	}
	return nil
}
