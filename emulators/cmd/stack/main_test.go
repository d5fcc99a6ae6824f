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
	services := []service{{name: "gcs"}, {name: "tasks"}, {name: "pubsub"}}
	if got := alive(dir, services); len(got) != 1 {
		t.Errorf("alive = %v, want only tasks", got)
	}
	if err := down(dir, services); err != nil {
		t.Fatal(err)
	}
	if groupAlive(ours) {
		t.Error("recorded group still alive")
	}
	if !groupAlive(other) {
		t.Error("a group the stack did not record was stopped")
	}
	if _, err := os.Stat(pidFile(dir, "tasks")); !os.IsNotExist(err) {
		t.Error("pid file not removed")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
