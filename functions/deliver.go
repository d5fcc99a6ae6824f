package functions

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/invoker"
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
	if _, err := (invoker.Checker{Audience: d.cfg.TasksOIDCAudience, Email: d.cfg.TasksServiceAccount}).Check(r); err != nil {
		// Answered as if nothing were here; the reason goes to the log.
		logger.Warn("deliverWebhook refused a caller", "error", err.Error())
		writeError(w, fault.New(fault.NotFound, "", "not found"))
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
