package functions

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/invoker"
)

// sweep is Cloud Scheduler's target, every few minutes: it gets requests
// that stopped progressing moving again (pipeline.Service.Sweep) and
// answers what it did. A failure answers 500, which Cloud Scheduler logs;
// the next run tries again.
func sweep(w http.ResponseWriter, r *http.Request) {
	d, err := loadDeps()
	if err != nil {
		writeError(w, fault.Wrap(fault.Internal, "", err, "configuration"))
		return
	}
	if _, err := (invoker.Checker{Audience: d.cfg.SweepURL, Email: d.cfg.TasksServiceAccount}).Check(r); err != nil {
		logger.Warn("sweep refused a caller", "error", err.Error())
		writeError(w, fault.New(fault.NotFound, "", "not found"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, fault.New(fault.Invalid, "", "the sweep is started with POST"))
		return
	}
	rep, err := d.svc.Sweep(r.Context(), time.Now())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		logger.Error("sweep failed", "error", err.Error())
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(rep)
}
