//go:build faults

package functions_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/localstack"
)

// devhost is cmd/devhost running as a separate process on its own topics,
// so the test can kill it with SIGKILL and start it again on the same port.
type devhost struct {
	t    *testing.T
	bin  string
	addr string
	env  []string
	cmd  *exec.Cmd
	log  *os.File
}

func (h *devhost) start() {
	h.t.Helper()
	h.cmd = exec.Command(h.bin, "-addr", h.addr)
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

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The function host is killed (SIGKILL) while a batch is in flight and
// started again: every image still ends stored exactly once, the request
// completes with exact counts and one completion. Not parallel: run beside
// the load test, the Pub/Sub emulator sometimes stopped pushing the killed
// host's subscription for minutes.
func TestFaultHostKilledMidBatch(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	bin := filepath.Join(dir, "devhost")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/devhost").CombinedOutput(); err != nil {
		t.Fatalf("go build devhost: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "devhost.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := emulatortest.Suffix()
	env := append(os.Environ(), "IMGPIPE_IMAGES_TOPIC=images-kill-"+s, "IMGPIPE_DEADLETTER_TOPIC=dead-kill-"+s)
	h := &devhost{t: t, bin: bin, addr: freeAddr(t), env: env, log: logf}
	h.start()
	defer func() {
		h.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("devhost log, last 4 kB:\n%s", b[max(0, len(b)-4096):])
		}
		// Its subscriptions outlive it in the emulator: remove them.
		c := cfg
		c.ImagesTopic, c.DeadLetterTopic = "images-kill-"+s, "dead-kill-"+s
		if err := localstack.Unwire(context.Background(), localstack.ProductionWiring(c, "http://"+h.addr)); err != nil {
			t.Log("Unwire:", err)
		}
	}()

	const images = 40
	names := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg"}
	var rows []string
	for i := 0; i < images/2; i++ {
		u := func(k int) string {
			return fmt.Sprintf("%s/slow/%s?delay=300ms&k=%d-%d-%s", imageURL, names[(i+k)%4], i, k, s)
		}
		rows = append(rows, fmt.Sprintf("K%d,Killed %d,\"%s,%s\"", i, i, u(0), u(1)))
	}
	id, _ := uploadCSVTo(t, "http://"+h.addr, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")

	// Kill it once some images are done and others are in flight.
	for deadline := time.Now().Add(60 * time.Second); ; {
		v := getStatus(t, id)
		if v.ProcessedImages >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devhost processed %d images in 60 s (log %s)", v.ProcessedImages, logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.kill()
	atKill := getStatus(t, id)
	time.Sleep(2 * time.Second)
	h.start()
	v := awaitFinal(t, id, 180*time.Second)
	if v.Status != batch.Completed || v.ProcessedImages != images || v.FailedImages != 0 {
		t.Errorf("after a kill mid-batch: %s processed %d failed %d %v", v.Status, v.ProcessedImages, v.FailedImages, failedReasons(t, id))
	}
	comp, _, _ := st.GetCompletion(context.Background(), id)
	if comp.HookCalls != 1 {
		t.Errorf("hook calls %d, want 1", comp.HookCalls)
	}
	t.Logf("host killed with %d/%d images done, restarted 2 s later: %d processed, %d failed, one completion, in %v",
		atKill.ProcessedImages, images, v.ProcessedImages, v.FailedImages, time.Since(start))
}
