package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startGroup starts a shell that leads its own process group with a child
// that ignores SIGTERM, like a JVM slow to stop.
func startGroup(t *testing.T, script string) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid
}

func TestStopGroupStopsChildrenToo(t *testing.T) {
	pid := startGroup(t, "sleep 60 & sleep 60 & wait")
	time.Sleep(100 * time.Millisecond)
	if !groupAlive(pid) {
		t.Fatal("group not alive after start")
	}
	if err := stopGroup(pid); err != nil {
		t.Fatal(err)
	}
	if groupAlive(pid) {
		t.Error("group alive after stopGroup")
	}
}

func TestStopGroupEscalatesToSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10s")
	}
	pid := startGroup(t, "trap '' TERM; sleep 60 & wait; sleep 60")
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := stopGroup(pid); err != nil {
		t.Fatal(err)
	}
	if groupAlive(pid) {
		t.Error("group alive after stopGroup")
	}
	if el := time.Since(start); el < 9*time.Second {
		t.Errorf("stopped after %v: SIGTERM should have been ignored for 10s", el)
	}
}

func TestDownStopsOnlyRecordedGroups(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/pids", 0o755); err != nil {
		t.Fatal(err)
	}
	ours := startGroup(t, "sleep 60")
	other := startGroup(t, "sleep 60")
	t.Cleanup(func() { _ = syscall.Kill(-other, syscall.SIGKILL) })
	if err := os.WriteFile(pidFile(dir, "gcs"), []byte("12345678\n"), 0o644); err != nil { // a stale PID: nothing runs there
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile(dir, "tasks"), []byte(itoa(ours)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := alive(dir); len(got) != 1 {
		t.Errorf("alive = %v, want only tasks", got)
	}
	if err := down(dir); err != nil {
		t.Fatal(err)
	}
	if groupAlive(ours) {
		t.Error("recorded group still alive")
	}
	if !groupAlive(other) {
		t.Error("a group the stack did not record was stopped")
	}
	for _, name := range []string{"tasks", "gcs"} {
		if _, err := os.Stat(pidFile(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s's pid file not removed", name)
		}
	}
}

// A command run by run is a process group of its own, recorded while it
// runs; its exit code comes back and its record goes.
func TestRunRecordsTheCommandWhileItRuns(t *testing.T) {
	dir := t.TempDir()
	f := pidFile(dir, runName)
	script := `i=0; while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; test "$(cat "$1")" = $$ && test "$(ps -o pgid= -p $$ | tr -d ' ')" = $$ && exit 3`
	code, sig, err := run(dir, []string{"sh", "-c", script, "sh", f})
	if err != nil || code != 3 || sig != 0 {
		t.Errorf("run = %d, %v, %v; want exit code 3 (its pid recorded, leading its own group)", code, sig, err)
	}
	if _, err := os.Stat(pidFile(dir, runName)); !os.IsNotExist(err) {
		t.Error("run.pid left behind after the command ended")
	}
}

// A signal run receives reaches the whole group, children included, and
// run reports it.
func TestRunPassesSignalsOn(t *testing.T) {
	dir := t.TempDir()
	type result struct {
		code int
		sig  syscall.Signal
		err  error
	}
	got := make(chan result, 1)
	go func() {
		code, sig, err := run(dir, []string{"sh", "-c", "sleep 60 & sleep 60"})
		got <- result{code, sig, err}
	}()
	pid := waitPid(t, dir, runName)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.sig != syscall.SIGTERM || r.code != 128+int(syscall.SIGTERM) {
			t.Errorf("run = %d, %v, %v; want the command ended by SIGTERM", r.code, r.sig, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after SIGTERM")
	}
	if groupAlive(pid) {
		t.Error("the command's group outlived run")
	}
}

// What a killed run left running is recorded, so up's first step stops it.
func TestLeftoverRunIsStopped(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/pids", 0o755); err != nil {
		t.Fatal(err)
	}
	left := startGroup(t, "sleep 60 & sleep 60")
	if err := os.WriteFile(pidFile(dir, runName), []byte(itoa(left)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := stopLeftovers(dir); err != nil {
		t.Fatal(err)
	}
	if groupAlive(left) {
		t.Error("a leftover run's group is still alive")
	}
}

// waitPid waits for dir's record of name and returns its pid.
func waitPid(t *testing.T, dir, name string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pid, ok := readPid(dir, name); ok {
			return pid
		}
	}
	t.Fatalf("no record of %s in %s", name, dir)
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }
