package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/outbound"
	"github.com/imgpipe/imgpipe/shared/tasks"
	"github.com/imgpipe/imgpipe/shared/webhook"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// Enqueuer creates a named task; an existing name is success.
type Enqueuer interface {
	Enqueue(ctx context.Context, id string, body []byte) error
}

// Webhooks sends a request's completion to the user's webhookUrl through
// Cloud Tasks, which retries with the queue's exponential backoff.
type Webhooks struct {
	Enqueuer    Enqueuer
	Signer      *webhook.Signer
	Client      *http.Client // through the outbound guard, no redirects
	Timeout     time.Duration
	MaxAttempts int // the queue's max_attempts
	// InlineMaxImages bounds the body: bigger requests get no products,
	// only the report and status URLs.
	InlineMaxImages int
}

// DeliveryJob is the body of a webhook task.
type DeliveryJob struct {
	RequestID string `json:"requestId"`
	Event     string `json:"event"`
}

// WebhookHook is the completion hook that enqueues the webhook.
type WebhookHook struct{ S *Service }

// RequestFinished enqueues the completion webhook under a name derived from
// the request, so a second call is a no-op.
func (h WebhookHook) RequestFinished(ctx context.Context, r batch.Request, c batch.Counts) error {
	if r.WebhookURL == "" {
		return nil
	}
	return h.S.enqueueWebhook(ctx, r.ID, tasks.TaskID(r.ID, "completed"), true)
}

func (s *Service) enqueueWebhook(ctx context.Context, id, taskID string, first bool) error {
	if first {
		if err := s.WebhookLog.StartWebhook(ctx, id); err != nil {
			return err
		}
	}
	body, _ := json.Marshal(DeliveryJob{RequestID: id, Event: webhook.EventCompleted})
	return s.Webhooks.Enqueuer.Enqueue(ctx, taskID, body)
}

// RedeliverWebhook sends a finished request's webhook again, as a new task.
func (s *Service) RedeliverWebhook(ctx context.Context, id, owner string) (int, error) {
	r, err := s.getOwned(ctx, id, owner)
	if err != nil {
		return 0, err
	}
	if r.WebhookURL == "" {
		return 0, fault.New(fault.Invalid, "", "request %s has no webhookUrl", id)
	}
	if r.Status != batch.Completed && r.Status != batch.Failed {
		return 0, fault.New(fault.Invalid, "", "request %s has not finished (status %s): its webhook goes out when it does", id, r.Status)
	}
	n, err := s.WebhookLog.NextRedelivery(ctx, id)
	if err != nil {
		return 0, err
	}
	return n, s.enqueueWebhook(ctx, id, tasks.TaskID(id, "redeliver", strconv.Itoa(n)), false)
}

// DeliverWebhook makes one attempt (one Cloud Tasks dispatch) and records
// it. retry is true when Cloud Tasks should try again: the attempt failed
// and it was not the last one allowed.
func (s *Service) DeliverWebhook(ctx context.Context, job DeliveryJob, task string, retryCount int) (retry bool, err error) {
	r, err := s.Requests.GetRequest(ctx, job.RequestID)
	if err != nil {
		return false, err
	}
	if r.WebhookURL == "" {
		return false, nil
	}
	body, err := s.webhookBody(ctx, r)
	if err != nil {
		return false, err
	}
	start := time.Now()
	code, sendErr := s.postWebhook(ctx, r.WebhookURL, job, body)
	a := batch.WebhookAttempt{Task: task, Retry: retryCount, At: start.UTC(), StatusCode: code, DurationMS: time.Since(start).Milliseconds()}
	switch {
	case sendErr == nil:
		a.Outcome = batch.WebhookDelivered
	case retryCount+1 >= s.Webhooks.MaxAttempts:
		a.Outcome, a.Error = batch.WebhookFailed, sendErr.Error()
	default:
		a.Outcome, a.Error = batch.WebhookDelivering, sendErr.Error()
	}
	if _, err := s.WebhookLog.RecordWebhookAttempt(ctx, r.ID, tasks.TaskID(task, strconv.Itoa(retryCount)), a); err != nil {
		return false, err
	}
	s.Log.Info("webhook attempt", "requestId", r.ID, "task", task, "retry", retryCount, "statusCode", code,
		"outcome", a.Outcome, "error", a.Error, "durationMs", a.DurationMS)
	return a.Outcome == batch.WebhookDelivering, nil
}

// webhookBody is the payload, products inlined up to the threshold.
func (s *Service) webhookBody(ctx context.Context, r batch.Request) ([]byte, error) {
	p := wire.WebhookPayload{
		Event: webhook.EventCompleted, RequestID: r.ID, Status: string(r.Status),
		TotalImages: r.TotalImages, ProcessedImages: r.Processed, FailedImages: r.Failed, CompletedAt: r.CompletedAt,
		StatusURL: r.BaseURL + "/api/status/" + r.ID, ReportURL: r.BaseURL + "/api/report/" + r.ID,
		Products: []wire.WebhookProduct{},
	}
	if r.TotalImages > s.Webhooks.InlineMaxImages {
		p.ProductsOmitted = true
	} else {
		views, err := s.productViews(ctx, r, 0, r.ProductCount)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			wp := wire.WebhookProduct{SerialNumber: v.SerialNumber, ProductName: v.ProductName, InputImageURLs: v.InputImageURLs, OutputImageURLs: v.OutputImageURLs}
			if r.Sizing != nil && len(r.Sizing.Sizes) > 0 {
				wp.SizeImageURLs = map[string][]string{}
				for _, sz := range r.Sizing.Sizes {
					wp.SizeImageURLs[sz.Name] = v.SizeURLs(sz.Name)
				}
			}
			p.Products = append(p.Products, wp)
		}
	}
	return json.Marshal(p)
}

// postWebhook sends one signed POST; any answer but 2xx, a redirect, or no
// answer within the timeout is an error.
func (s *Service) postWebhook(ctx context.Context, url string, job DeliveryJob, body []byte) (int, error) {
	h, err := s.Webhooks.Signer.Headers(webhook.MessageID(job.RequestID, job.Event), time.Now(), body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Webhooks.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("invalid webhook URL: %w", err)
	}
	req.Header = h
	req.Header.Set("User-Agent", "imgpipe-webhooks/1")
	resp, err := s.Webhooks.Client.Do(req)
	if err != nil {
		var fe *fault.Error
		if errors.As(err, &fe) {
			return 0, fmt.Errorf("%s: %s", fe.Reason, fe.Message)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("timeout: no answer within %v", s.Webhooks.Timeout)
		}
		return 0, fmt.Errorf("connection failed: %v", outbound.Redact(err.Error()))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, fmt.Errorf("redirect %s: webhooks are not redirected", resp.Status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

func (s *Service) webhookView(ctx context.Context, r batch.Request) (*wire.WebhookStatus, error) {
	if r.WebhookURL == "" {
		return nil, nil
	}
	w, found, err := s.WebhookLog.GetWebhookState(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	v := &wire.WebhookStatus{URL: outbound.Redact(r.WebhookURL), Status: batch.WebhookPending}
	if found {
		v.Status, v.Attempts, v.LastError = w.Status, w.Attempts, w.LastError
		if !w.LastAttemptAt.IsZero() {
			at := w.LastAttemptAt
			v.LastAttemptAt = &at
		}
	}
	return v, nil
}
