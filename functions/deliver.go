package functions

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/api/idtoken"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// deliverWebhook is Cloud Tasks' target: one attempt to deliver a webhook.
// 2xx tells Cloud Tasks the task is done (delivered, or failed for good on
// the last allowed attempt); 502 asks it to retry with the queue's backoff.
func deliverWebhook(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	if err := checkCaller(r, d.cfg.TasksOIDCAudience, d.cfg.TasksServiceAccount); err != nil {
		writeError(w, err)
		return
	}
	task := r.Header.Get("X-CloudTasks-TaskName")
	retry, err := strconv.Atoi(r.Header.Get("X-CloudTasks-TaskRetryCount"))
	if task == "" || err != nil {
		writeError(w, fault.New(fault.Invalid, "", "X-CloudTasks-TaskName and X-CloudTasks-TaskRetryCount are required: this endpoint is for Cloud Tasks"))
		return
	}
	var job pipeline.DeliveryJob
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&job); err != nil || job.RequestID == "" {
		// A malformed task will never succeed: acknowledge it.
		logger.Error("malformed webhook task acknowledged", "task", task)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	again, err := d.svc.DeliverWebhook(r.Context(), job, task, retry)
	switch {
	case err != nil && fault.KindOf(err) == fault.NotFound:
		w.WriteHeader(http.StatusNoContent) // the request is gone: nothing to deliver
	case err != nil:
		writeError(w, err) // store hiccup: Cloud Tasks retries
	case again:
		http.Error(w, "webhook attempt failed; retry", http.StatusBadGateway)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkCaller admits only Cloud Tasks: an OIDC token for audience signed by
// Google for our service account. An empty audience disables the check
// (local stacks, whose Cloud Tasks emulator cannot mint real tokens).
func checkCaller(r *http.Request, audience, serviceAccount string) error {
	if audience == "" {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return fault.New(fault.NotFound, "", "not found")
	}
	p, err := idtoken.Validate(r.Context(), tok, audience)
	if err != nil || (serviceAccount != "" && p.Claims["email"] != serviceAccount) {
		return fault.New(fault.NotFound, "", "not found")
	}
	return nil
}
