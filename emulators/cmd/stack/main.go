// Command stack brings the local emulators up and down: the official Pub/Sub
// and Firestore emulators (gcloud), fake-gcs-server and our Cloud Tasks
// emulator, each on a fixed loopback port, each in its own process group
// whose ID is written to DIR/pids/NAME.pid, each logging to DIR/logs/NAME.log.
//
//	stack up   -dir .stack/dev [-pubsub 8085 -firestore 8086 -gcs 4443 -tasks 8123]
//	stack run  -dir .stack/dev -- COMMAND [ARG...]
//	stack down -dir .stack/dev
//	stack status -dir .stack/dev
//
// "up" returns once every emulator answers, and writes DIR/env with the
// variables the clients read. "run" runs a command that uses them (the
// tests, the function host) in a process group of its own, recorded as
// DIR/pids/run.pid while it runs, and passes SIGINT, SIGTERM and SIGHUP on
// to it. "down" stops exactly the process groups recorded in DIR/pids
// (SIGTERM, then SIGKILL after 10 s): never anything found by name. What a
// run killed before it could stop them left there is stopped by the next
// "up" (or "down"), so a rerun finds its ports free.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type service struct {
	name  string
	port  int
	argv  []string
	ready func(ctx context.Context, addr string) error
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	dir := fs.String("dir", ".stack/dev", "state folder: pids/, logs/, env")
	bin := fs.String("bin", ".bin", "folder holding fake-gcs-server and cloudtasks-emulator")
	project := fs.String("project", "imgpipe-local", "project ID the emulators serve")
	pubsubPort := fs.Int("pubsub", 8085, "Pub/Sub emulator port")
	firestorePort := fs.Int("firestore", 8086, "Firestore emulator port")
	gcsPort := fs.Int("gcs", 4443, "fake-gcs-server port")
	tasksPort := fs.Int("tasks", 8123, "Cloud Tasks emulator port")
	timeout := fs.Duration("timeout", 120*time.Second, "how long 'up' waits for every emulator")
	_ = fs.Parse(os.Args[2:])

	services := []service{
		{"pubsub", *pubsubPort, []string{"gcloud", "beta", "emulators", "pubsub", "start",
			"--host-port=127.0.0.1:" + strconv.Itoa(*pubsubPort), "--project=" + *project}, answersOk},
		{"firestore", *firestorePort, []string{"gcloud", "emulators", "firestore", "start",
			"--host-port=127.0.0.1:" + strconv.Itoa(*firestorePort)}, answersOk},
		{"gcs", *gcsPort, []string{filepath.Join(*bin, "fake-gcs-server"), "-scheme", "http", "-host", "127.0.0.1",
			"-port", strconv.Itoa(*gcsPort), "-backend", "memory", "-public-host", "127.0.0.1:" + strconv.Itoa(*gcsPort),
			"-log-level", "warn"}, listsBuckets},
		{"tasks", *tasksPort, []string{filepath.Join(*bin, "cloudtasks-emulator"),
			"-host-port", "127.0.0.1:" + strconv.Itoa(*tasksPort)}, acceptsTCP},
	}

	var err error
	switch cmd {
	case "up":
		err = up(*dir, services, *timeout)
		if err == nil {
			err = writeEnv(*dir, *project, services)
		}
	case "run":
		var code int
		var sig syscall.Signal
		if code, sig, err = run(*dir, fs.Args()); err == nil {
			if sig != 0 {
				// Die of the same signal, so that a shell waiting for us
				// sees it (and stops too, on SIGINT).
				signal.Reset(sig)
				_ = syscall.Kill(os.Getpid(), sig)
				time.Sleep(time.Second)
			}
			os.Exit(code)
		}
	case "down":
		err = down(*dir)
	case "status":
		err = printStatus(*dir, services)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stack %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stack up|down|status [-dir DIR] [-bin DIR] [-project ID] [-pubsub P] [-firestore P] [-gcs P] [-tasks P]")
	fmt.Fprintln(os.Stderr, "       stack run [-dir DIR] -- COMMAND [ARG...]")
	os.Exit(2)
}

func pidFile(dir, name string) string { return filepath.Join(dir, "pids", name+".pid") }
func logFile(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }

func up(dir string, services []service, timeout time.Duration) error {
	for _, sub := range []string{"pids", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := stopLeftovers(dir); err != nil {
		return err
	}
	if err := checkTools(services); err != nil {
		return err
	}
	for _, s := range services {
		if c, err := net.DialTimeout("tcp", addr(s.port), 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("port %d (%s) is already in use by a process this stack did not start; stop it or choose another port", s.port, s.name)
		}
	}

	start := time.Now()
	for _, s := range services {
		if err := launch(dir, s); err != nil {
			_ = down(dir)
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(services))
	took := make([]time.Duration, len(services))
	for i, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitReady(ctx, dir, s)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = down(dir)
		return err
	}
	for i, s := range services {
		fmt.Printf("  %-10s http://%s  ready after %.1fs  (log %s)\n", s.name, addr(s.port), took[i].Seconds(), logFile(dir, s.name))
	}
	fmt.Printf("emulators up in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func checkTools(services []service) error {
	var errs []error
	for _, s := range services {
		if _, err := exec.LookPath(s.argv[0]); err != nil {
			hint := ""
			if s.argv[0] == "gcloud" {
				hint = " (install google-cloud-cli with its pubsub and firestore emulator components, and Java 17+)"
			} else {
				hint = " (run 'make tools')"
			}
			errs = append(errs, fmt.Errorf("%s: %s not found%s", s.name, s.argv[0], hint))
		}
	}
	return errors.Join(errs...)
}

func launch(dir string, s service) error {
	logf, err := os.OpenFile(logFile(dir, s.name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Stdin = nil
	// Its own process group: gcloud starts Java children, and stopping the
	// group stops them all. It also keeps Ctrl-C in a terminal from reaching
	// the emulators before 'down' stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", s.name, s.argv[0], err)
	}
	if err := os.WriteFile(pidFile(dir, s.name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	// Reap it if it dies while we wait; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	return nil
}

func waitReady(ctx context.Context, dir string, s service) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.ready(cctx, addr(s.port))
		cancel()
		if err == nil {
			return nil
		}
		if pid, ok := readPid(dir, s.name); ok && !groupAlive(pid) {
			return fmt.Errorf("%s exited before it was ready; last lines of %s:\n%s", s.name, logFile(dir, s.name), tail(logFile(dir, s.name), 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready on %s (%v); last lines of %s:\n%s", s.name, addr(s.port), err, logFile(dir, s.name), tail(logFile(dir, s.name), 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopLeftovers stops what an earlier run that did not end cleanly left
// recorded in dir: its emulators, and a command it ran.
func stopLeftovers(dir string) error {
	if running := alive(dir); len(running) > 0 {
		fmt.Printf("stopping leftovers of an earlier run in %s: %s\n", dir, strings.Join(running, ", "))
		return down(dir)
	}
	return nil
}

// down stops every process group recorded in dir/pids and removes its
// record.
func down(dir string) error {
	names := recorded(dir)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		pid, ok := readPid(dir, name)
		if !ok {
			_ = os.Remove(pidFile(dir, name))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopGroup(pid); err != nil {
				errs[i] = fmt.Errorf("%s (pid %d): %w", name, pid, err)
				return
			}
			_ = os.Remove(pidFile(dir, name))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run runs argv in a process group of its own, recorded as dir/pids/run.pid
// until it ends, and passes SIGINT, SIGTERM and SIGHUP on to the group. It
// returns argv's exit code, or the signal that ended it. Whatever the
// group still holds once its leader has exited is stopped.
func run(dir string, argv []string) (code int, sig syscall.Signal, err error) {
	if len(argv) == 0 {
		return 0, 0, errors.New("no command to run")
	}
	if err := os.MkdirAll(filepath.Join(dir, "pids"), 0o755); err != nil {
		return 0, 0, err
	}
	if pid, ok := readPid(dir, runName); ok && groupAlive(pid) {
		fmt.Printf("stopping the leftover of an earlier run in %s (pid %d)\n", dir, pid)
		if err := stopGroup(pid); err != nil {
			return 0, 0, err
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(pidFile(dir, runName), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = stopGroup(pid)
		return 0, 0, err
	}
	defer os.Remove(pidFile(dir, runName))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = syscall.Kill(-pid, s.(syscall.Signal))
		case err := <-done:
			_ = stopGroup(pid)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), ws.Signal(), nil
				}
				return exit.ExitCode(), 0, nil
			}
			return 0, 0, err
		}
	}
}

// runName is the record of the command run runs.
const runName = "run"

// recorded is the names of the process groups recorded in dir/pids.
func recorded(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".pid")
	}
	return names
}

// stopGroup sends SIGTERM to the process group pid leads, waits up to 10 s
// for it to end, then sends SIGKILL.
func stopGroup(pid int) error {
	if !groupAlive(pid) {
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !groupAlive(pid) {
			return nil
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !groupAlive(pid) {
			return nil
		}
	}
	return errors.New("process group still alive after SIGKILL")
}

func groupAlive(pid int) bool {
	err := syscall.Kill(-pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func readPid(dir, name string) (int, bool) {
	b, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}

// alive is the process groups recorded in dir that are still running.
func alive(dir string) []string {
	var out []string
	for _, name := range recorded(dir) {
		if pid, ok := readPid(dir, name); ok && groupAlive(pid) {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	return out
}

func printStatus(dir string, services []service) error {
	for _, s := range services {
		state := "stopped"
		if pid, ok := readPid(dir, s.name); ok && groupAlive(pid) {
			state = fmt.Sprintf("running, pid %d", pid)
		}
		fmt.Printf("%-10s %s  %s\n", s.name, addr(s.port), state)
	}
	return nil
}

func writeEnv(dir, project string, services []service) error {
	port := map[string]int{}
	for _, s := range services {
		port[s.name] = s.port
	}
	env := fmt.Sprintf(`GOOGLE_CLOUD_PROJECT=%s
PUBSUB_EMULATOR_HOST=127.0.0.1:%d
FIRESTORE_EMULATOR_HOST=127.0.0.1:%d
STORAGE_EMULATOR_HOST=http://127.0.0.1:%d
CLOUDTASKS_EMULATOR_HOST=127.0.0.1:%d
`, project, port["pubsub"], port["firestore"], port["gcs"], port["tasks"])
	return os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o644)
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func answersOk(ctx context.Context, a string) error {
	return httpGet(ctx, "http://"+a+"/", func(code int, body string) bool { return code == 200 && strings.HasPrefix(body, "Ok") })
}

func listsBuckets(ctx context.Context, a string) error {
	return httpGet(ctx, "http://"+a+"/storage/v1/b", func(code int, _ string) bool { return code == 200 })
}

func acceptsTCP(ctx context.Context, a string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", a)
	if err != nil {
		return err
	}
	return c.Close()
}

func httpGet(ctx context.Context, url string, ok func(int, string) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if !ok(resp.StatusCode, string(b)) {
		return fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, b)
	}
	return nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
