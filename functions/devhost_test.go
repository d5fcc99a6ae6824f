package functions_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/functions/localstack"
)

// devhost is cmd/devhost running as a separate process on its own topics,
// so the test can kill it with SIGKILL and start it again on the same port.
type devhost struct {
	t    testing.TB
	bin  string
	addr string
	env  []string
	cmd  *exec.Cmd
	log  *os.File
	// suffix names its topics: images-SUFFIX, dead-SUFFIX.
	suffix string
	// cpuprofile, when set before start, is where the host writes a CPU
	// profile of itself until it stops.
	cpuprofile string
}

// unwire removes the host's push subscriptions: what is published to its
// topics after this goes nowhere.
func (h *devhost) unwire() {
	c := cfg
	c.ImagesTopic, c.DeadLetterTopic = "images-"+h.suffix, "dead-"+h.suffix
	if err := localstack.Unwire(context.Background(), localstack.ProductionWiring(c, "http://"+h.addr)); err != nil {
		h.t.Log("Unwire:", err)
	}
}

func (h *devhost) start() {
	h.t.Helper()
	args := []string{"-addr", h.addr}
	if h.cpuprofile != "" {
		args = append(args, "-cpuprofile", h.cpuprofile)
	}
	h.cmd = exec.Command(h.bin, args...)
	h.cmd.Env = h.env
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		// Ready once it has wired the emulators and serves the API.
		if resp, err := http.Get("http://" + h.addr + "/api/status/none"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("devhost did not come up on %s (log %s)", h.addr, h.log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the host's process group: no shutdown, in-flight
// deliveries die with it.
func (h *devhost) kill() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	h.cmd.Wait()
	h.cmd = nil
}

// stop ends the host as Ctrl-C does and returns the usage it logged on
// the way out.
func (h *devhost) stop() functions.Usage {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Wait()
	h.cmd = nil
	b, err := os.ReadFile(h.log.Name())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			Msg   string
			Usage *functions.Usage
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "usage" && l.Usage != nil {
			return *l.Usage
		}
	}
	h.t.Fatalf("the host logged no usage line")
	return functions.Usage{}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newDevhost builds cmd/devhost and readies it to run on a free port with
// its own topics (images-SUFFIX, dead-SUFFIX). Cleanup kills it, removes
// its subscriptions (they would outlive it in the emulator) and shows the
// end of its log if the test failed.
func newDevhost(tb testing.TB, suffix string) *devhost {
	tb.Helper()
	dir := tb.TempDir()
	bin := filepath.Join(dir, "devhost")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/devhost").CombinedOutput(); err != nil {
		tb.Fatalf("go build devhost: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "devhost.log"))
	if err != nil {
		tb.Fatal(err)
	}
	// The URLs of this binary's own host are left out: the process sets
	// its own (webhook delivery, sweep).
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMGPIPE_WEBHOOK_DELIVERY_URL=") && !strings.HasPrefix(kv, "IMGPIPE_SWEEP_URL=") && !strings.HasPrefix(kv, "IMGPIPE_TASKS_OIDC_AUDIENCE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "IMGPIPE_IMAGES_TOPIC=images-"+suffix, "IMGPIPE_DEADLETTER_TOPIC=dead-"+suffix)
	h := &devhost{t: tb, bin: bin, addr: freeAddr(tb), env: env, log: logf, suffix: suffix}
	tb.Cleanup(func() {
		h.kill()
		h.unwire()
		if tb.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tb.Logf("devhost log, last 4 kB:\n%s", b[max(0, len(b)-4096):])
		}
	})
	return h
}

// peakRSS is the host's peak resident memory so far, in bytes (VmHWM).
func (h *devhost) peakRSS() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
