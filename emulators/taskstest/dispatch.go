package taskstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// dispatch makes one attempt of t and then either deletes it (success or
// retries exhausted) or schedules the next attempt.
func (s *Server) dispatch(q *queue, t *task) {
	defer s.wg.Done()

	s.mu.Lock()
	req, deadline, err := s.buildRequest(q, t)
	queueName := q.pb.Name
	attempt := t.pb.DispatchCount
	s.mu.Unlock()

	start := time.Now()
	sc, retryAfterHeader, callErr := 0, "", err
	if callErr == nil {
		ctx, cancel := context.WithTimeout(s.ctx, deadline)
		var resp *http.Response
		resp, callErr = s.opts.httpClient.Do(req.WithContext(ctx))
		if callErr == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			sc, retryAfterHeader = resp.StatusCode, resp.Header.Get("Retry-After")
		}
		cancel()
	}
	if s.ctx.Err() != nil {
		return // the server is closing
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	now := s.opts.now()
	t.dispatching = false
	q.inflight--
	q.signal()

	code, msg := codes.OK, ""
	switch {
	case callErr != nil && errors.Is(callErr, context.DeadlineExceeded):
		code, msg = codes.DeadlineExceeded, fmt.Sprintf("no response within dispatch_deadline %v", deadline)
	case callErr != nil:
		code, msg = codes.Unavailable, callErr.Error()
	default:
		code, msg = httpToCode(sc), http.StatusText(sc)
		t.pb.ResponseCount++
		if sc < 500 {
			t.execCount++
		}
		t.prevResponse = sc
	}
	if t.pb.LastAttempt != nil {
		t.pb.LastAttempt.ResponseTime = timestampOf(now)
		t.pb.LastAttempt.ResponseStatus = &status.Status{Code: int32(code), Message: msg}
	}
	log := s.opts.logger.With("queue", shortID(queueName), "task", shortID(t.pb.Name), "attempt", attempt,
		"status", sc, "code", code.String(), "duration_ms", time.Since(start).Milliseconds())

	if _, still := q.tasks[t.pb.Name]; !still {
		log.Info("dispatched a task deleted meanwhile")
		return
	}
	if code == codes.OK {
		log.Info("task done")
		q.removeLocked(t.pb.Name, now, s.opts.tombstoneTTL)
		return
	}
	policy := policyOf(q.pb.GetRetryConfig())
	if t.pb.GetRetryConfig() != nil {
		policy = policyOf(t.pb.GetRetryConfig())
	}
	if policy.exhausted(t.pb.DispatchCount, t.firstAttempt, now) {
		log.Warn("task failed permanently: retries exhausted", "error", msg)
		q.removeLocked(t.pb.Name, now, s.opts.tombstoneTTL)
		return
	}
	delay := policy.backoff(t.pb.DispatchCount)
	if sc == http.StatusTooManyRequests || sc == http.StatusServiceUnavailable {
		if ra, ok := retryAfter(retryAfterHeader, now); ok && ra > delay {
			delay = ra
		}
	}
	t.pb.ScheduleTime = timestampOf(now.Add(delay))
	log.Info("task will be retried", "error", msg, "retry_in_ms", delay.Milliseconds())
	q.pushLocked(t)
}

// buildRequest turns a task into the HTTP request Cloud Tasks would send.
func (s *Server) buildRequest(q *queue, t *task) (*http.Request, time.Duration, error) {
	hr := t.pb.GetHttpRequest()
	method := hr.GetHttpMethod()
	if m := q.pb.GetHttpTarget().GetHttpMethod(); m != cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		method = m
	}
	var body io.Reader
	if len(hr.GetBody()) > 0 {
		body = bytes.NewReader(hr.GetBody())
	}
	req, err := http.NewRequest(method.String(), hr.GetUrl(), body)
	if err != nil {
		return nil, 0, fmt.Errorf("http.NewRequest: %w", err)
	}
	for k, v := range hr.GetHeaders() {
		req.Header.Set(k, v)
	}
	for _, o := range q.pb.GetHttpTarget().GetHeaderOverrides() {
		req.Header.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	if len(hr.GetBody()) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("User-Agent", "Google-Cloud-Tasks")
	req.Header.Set("X-CloudTasks-QueueName", shortID(q.pb.Name))
	req.Header.Set("X-CloudTasks-TaskName", shortID(t.pb.Name))
	req.Header.Set("X-CloudTasks-TaskRetryCount", strconv.Itoa(int(t.pb.DispatchCount-1)))
	req.Header.Set("X-CloudTasks-TaskExecutionCount", strconv.Itoa(int(t.execCount)))
	eta := t.pb.GetScheduleTime().AsTime()
	req.Header.Set("X-CloudTasks-TaskETA", strconv.FormatFloat(float64(eta.UnixNano())/1e9, 'f', 6, 64))
	if t.prevResponse != 0 {
		req.Header.Set("X-CloudTasks-TaskPreviousResponse", strconv.Itoa(t.prevResponse))
	}
	oidc, oauth := hr.GetOidcToken(), hr.GetOauthToken()
	if qt := q.pb.GetHttpTarget(); qt != nil {
		if qt.GetOidcToken() != nil {
			oidc = qt.GetOidcToken()
		}
		if qt.GetOauthToken() != nil {
			oauth = qt.GetOauthToken()
		}
	}
	switch {
	case oidc != nil:
		aud := oidc.GetAudience()
		if aud == "" {
			u := *req.URL
			u.RawQuery, u.Fragment = "", ""
			aud = u.String()
		}
		req.Header.Set("Authorization", "Bearer "+forwardedIDToken(oidc.GetServiceAccountEmail(), aud, time.Now()))
	case oauth != nil:
		req.Header.Set("Authorization", "Bearer taskstest-oauth-access-token")
	}
	return req, t.pb.GetDispatchDeadline().AsDuration(), nil
}

// forwardedIDToken is the Google ID token Cloud Tasks mints for the task,
// as a Cloud Run receiver gets it: Cloud Run verifies the signature, then
// passes the token on with the signature replaced by
// SIGNATURE_REMOVED_BY_GOOGLE. The emulator stands for both hops, so a local
// receiver runs the same claim checks (aud, email, exp) as production.
func forwardedIDToken(email, audience string, now time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss":            "https://accounts.google.com",
		"aud":            audience,
		"azp":            url.QueryEscape(email),
		"email":          email,
		"email_verified": true,
		"sub":            url.QueryEscape(email),
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	})
	return enc.EncodeToString(header) + "." + enc.EncodeToString(claims) + ".SIGNATURE_REMOVED_BY_GOOGLE"
}
