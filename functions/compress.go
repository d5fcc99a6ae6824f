package functions

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
)

func decodeImageMessage(e event.Event) (queue.ImageMessage, queue.PushData, error) {
	var d queue.PushData
	if err := e.DataAs(&d); err != nil {
		return queue.ImageMessage{}, d, fault.Wrap(fault.Permanent, "bad_message", err, "event.DataAs")
	}
	m, err := queue.Decode(d.Message.Data)
	return m, d, err
}

// compressImage handles one image message. A nil return acknowledges it; an
// error makes Pub/Sub deliver it again (only for transient failures: a
// permanent one is recorded on the image and acknowledged).
func compressImage(ctx context.Context, e event.Event) error {
	m, d, err := decodeImageMessage(e)
	if err != nil {
		// Nothing to record it against: acknowledge, loudly.
		logger.Error("undecodable image message acknowledged", "messageId", d.Message.MessageID, "error", err.Error())
		return nil
	}
	deps, err := loadDeps()
	if err != nil {
		return err
	}
	setCompressMemoryLimit.Do(func() { compressMemoryLimit(deps.cfg.CompressConcurrency, deps.limits.ImageLimits()) })
	if err := deps.svc.Compress(ctx, m, d.DeliveryAttempt); err != nil {
		if fault.Retryable(err) {
			return fmt.Errorf("compressImage %s/%s: %w", m.RequestID, m.Image.ID(), err)
		}
		pipeline.ImageLog(logger, m).Error("image message acknowledged after a permanent error", "error", err.Error())
	}
	return nil
}

var setCompressMemoryLimit sync.Once

// compressMemoryLimit sets the Go runtime's soft memory limit to what
// compressImage's memory rule gives it (terraform/functions.tf): 256 MiB,
// and for each image compressed at once its MemoryPerImage and one more
// fetched input waiting for a compression slot. Without it the
// collector lets the heap grow to twice what is live, and garbage that
// was not collected yet (a decoded image already encoded) would take the
// room of the next image's pixels: the worst accepted sizing of a 50 MP
// PNG peaked at 770 MB alone, and at 436 to 462 MB under the limit. An
// operator's GOMEMLIMIT wins.
func compressMemoryLimit(concurrency int, lim batch.ImageLimits) {
	if os.Getenv("GOMEMLIMIT") != "" || concurrency < 1 {
		return
	}
	debug.SetMemoryLimit(256<<20 + int64(concurrency)*(lim.MemoryPerImage()+lim.MaxBytes))
}

// deadLetter records an image whose message was delivered max-attempts
// times without success.
func deadLetter(ctx context.Context, e event.Event) error {
	m, d, err := decodeImageMessage(e)
	if err != nil {
		logger.Error("undecodable dead letter acknowledged", "messageId", d.Message.MessageID, "error", err.Error())
		return nil
	}
	deps, err := loadDeps()
	if err != nil {
		return err
	}
	attempts, _ := strconv.Atoi(d.Message.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"])
	pipeline.ImageLog(logger, m).Warn("image dead-lettered", "attempts", attempts)
	if err := deps.svc.DeadLetter(ctx, m, attempts); err != nil && fault.Retryable(err) {
		return fmt.Errorf("deadLetter %s/%s: %w", m.RequestID, m.Image.ID(), err)
	}
	return nil
}
