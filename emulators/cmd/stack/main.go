// Command stack brings the local emulators up and down: the official Pub/Sub
// and Firestore emulators (gcloud), fake-gcs-server and our Cloud Tasks
// emulator, each on a fixed loopback port, each in its own process group
// whose ID is written to DIR/pids/NAME.pid, each logging to DIR/logs/NAME.log.
//
//	stack up   -dir .stack/dev [-pubsub 8085 -firestore 8086 -gcs 4443 -tasks 8123]
//	stack down -dir .stack/dev
//	stack status -dir .stack/dev
//
// "up" returns once every emulator answers, and writes DIR/env with the
// variables the clients read. "down" stops exactly the process groups it
// started (SIGTERM, then SIGKILL after 10 s): never anything found by name.
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
	case "down":
		err = down(*dir, services)
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
	// Leftovers of a run that did not stop cleanly are ours: stop them first.
	if running := alive(dir, services); len(running) > 0 {
		fmt.Printf("stopping leftovers of an earlier run in %s: %s\n", dir, strings.Join(running, ", "))
		if err := down(dir, services); err != nil {
			return err
		}
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
			_ = down(dir, services)
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
		_ = down(dir, services)
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

func down(dir string, services []service) error {
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		pid, ok := readPid(dir, s.name)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopGroup(pid); err != nil {
				errs[i] = fmt.Errorf("%s (pid %d): %w", s.name, pid, err)
				return
			}
			_ = os.Remove(pidFile(dir, s.name))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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

func alive(dir string, services []service) []string {
	var out []string
	for _, s := range services {
		if pid, ok := readPid(dir, s.name); ok && groupAlive(pid) {
			out = append(out, fmt.Sprintf("%s (pid %d)", s.name, pid))
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
