package functions

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/invoker"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// sweep is Cloud Scheduler's target, every few minutes: it gets requests
// that stopped progressing moving again (pipeline.Service.Sweep) and
// answers what it did. A body {"requestId": ID} sweeps that request alone
// (an operator's call, with the invoker account's token). A failure
// answers 500, which Cloud Scheduler logs; the next run tries again.
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
	var one struct {
		RequestID string `json:"requestId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&one); err != nil && err != io.EOF {
		writeError(w, fault.New(fault.Invalid, "", "the body is empty or {\"requestId\": ID}: %v", err))
		return
	}
	var rep pipeline.SweepReport
	if one.RequestID != "" {
		rep, err = d.svc.SweepRequest(r.Context(), one.RequestID, time.Now())
	} else {
		rep, err = d.svc.Sweep(r.Context(), time.Now())
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil && fault.KindOf(err) == fault.NotFound {
		writeError(w, err)
		return
	}
	if err != nil {
		logger.Error("sweep failed", "error", err.Error())
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(rep)
}
