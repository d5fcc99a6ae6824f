package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/invoker"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// SweepOnce calls the sweep function as Cloud Scheduler does in
// production: POST with the invoker account's ID token for the sweep URL,
// as Cloud Run forwards it (signature removed), so the function runs the
// same checks. A requestID sweeps that request alone.
func SweepOnce(ctx context.Context, c config.Config, requestID string) (pipeline.SweepReport, error) {
	var rep pipeline.SweepReport
	now := time.Now()
	token := invoker.Forwarded(invoker.Claims{
		Issuer: "https://accounts.google.com", Audience: c.SweepURL, Email: c.TasksServiceAccount, EmailVerified: true,
		Subject: c.TasksServiceAccount, IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(),
	})
	var body io.Reader = http.NoBody
	if requestID != "" {
		b, _ := json.Marshal(map[string]string{"requestId": requestID})
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.SweepURL, body)
	if err != nil {
		return rep, fmt.Errorf("http.NewRequest: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, fmt.Errorf("sweep: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("sweep: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("sweep: %s", resp.Status)
	}
	return rep, nil
}

// RunSweeps is the local stand-in for the Cloud Scheduler job: it sweeps
// every interval until ctx ends, logging what each sweep did.
func RunSweeps(ctx context.Context, c config.Config, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := SweepOnce(ctx, c, "")
		if err != nil {
			log.Warn("local sweep failed", "error", err.Error())
			continue
		}
		if rep.Stalled > 0 {
			log.Info("local sweep", "report", rep)
		}
	}
}
