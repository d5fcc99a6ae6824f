// Package tasks is imgpipe's Cloud Tasks adapter: it enqueues webhook
// deliveries. The official client reads
// no emulator variable, so NewClient dials CLOUDTASKS_EMULATOR_HOST itself
// (plain gRPC, no credentials) when the configuration names one.
package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/imgpipe/imgpipe/shared/fault"
)

// NewClient returns a Cloud Tasks client: the emulator at emulatorHost when
// it is set, production otherwise.
func NewClient(ctx context.Context, emulatorHost string) (*cloudtasks.Client, error) {
	var opts []option.ClientOption
	if emulatorHost != "" {
		opts = append(opts,
			option.WithEndpoint(emulatorHost),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := cloudtasks.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloudtasks.NewClient: %w", err)
	}
	return c, nil
}

// Enqueuer creates webhook-delivery tasks on one queue.
type Enqueuer struct {
	Client         *cloudtasks.Client
	Queue          string // full queue name
	TargetURL      string // the deliverWebhook function
	ServiceAccount string // identity of the OIDC token each task carries
	Audience       string // that token's audience; TargetURL when empty
	Deadline       time.Duration
}

// Enqueue creates the task named id (under the queue) whose body is body.
// A task of that name existing, or run or deleted within the last hour, is
// success: enqueueing is idempotent.
func (e *Enqueuer) Enqueue(ctx context.Context, id string, body []byte) error {
	hr := &cloudtaskspb.HttpRequest{
		Url: e.TargetURL, HttpMethod: cloudtaskspb.HttpMethod_POST,
		Headers: map[string]string{"Content-Type": "application/json"}, Body: body,
	}
	if e.ServiceAccount != "" {
		aud := e.Audience
		if aud == "" {
			aud = e.TargetURL
		}
		hr.AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{
			ServiceAccountEmail: e.ServiceAccount, Audience: aud,
		}}
	}
	task := &cloudtaskspb.Task{
		Name:             e.Queue + "/tasks/" + id,
		MessageType:      &cloudtaskspb.Task_HttpRequest{HttpRequest: hr},
		DispatchDeadline: durationpb.New(max(e.Deadline, 15*time.Second)),
	}
	_, err := e.Client.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: e.Queue, Task: task})
	switch status.Code(err) {
	case codes.OK, codes.AlreadyExists:
		return nil
	default:
		return fault.Wrap(fault.Transient, "enqueue_failed", err, "cloudtasks.CreateTask %s", id)
	}
}

// TaskID turns any text into a valid task ID ([A-Za-z0-9_-], ≤ 500).
func TaskID(parts ...string) string {
	id := strings.Join(parts, "-")
	var b strings.Builder
	for _, r := range id {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
