// Package localstack wires the local emulators the way Terraform wires
// production: the images topic with a push subscription (and dead-letter
// policy) to the compress function, the dead-letter topic pushed to the
// dead-letter function, the output bucket and the webhook queue. It also
// runs the function host in-process, for tests and for cmd/devhost.
// Nothing here runs in production.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/imgpipe/imgpipe/functions"
	"github.com/imgpipe/imgpipe/shared/access"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/tasks"
)

// Push is one push subscription.
type Push struct {
	Topic        string // topic ID
	Subscription string // subscription ID
	Endpoint     string // full push URL
	AckDeadline  time.Duration
	// MinBackoff and MaxBackoff are the retry policy; zero means Pub/Sub's
	// default (immediate redelivery).
	MinBackoff, MaxBackoff time.Duration
	// DeadLetterTopic and MaxDeliveryAttempts set a dead-letter policy.
	DeadLetterTopic     string
	MaxDeliveryAttempts int
}

// Wiring names what a stack connects.
type Wiring struct {
	Config config.Config
	Pushes []Push
}

// ProductionWiring is the wiring of the product's own functions on a host:
// the subscriptions of terraform/pubsub.tf, with the same names, ack
// deadlines, retry policies, dead-letter policy and push paths
// (functions/deploy's tests fail when the two differ). Each ack deadline
// is the target function's timeout plus 60 s for a cold start; the image
// subscription's retry and dead-letter policies are sized so that a
// 10-minute burst of failed pushes dead-letters no good image
// (terraform/README.md, Sizing and platform limits).
func ProductionWiring(c config.Config, hostURL string) Wiring {
	return Wiring{Config: c, Pushes: []Push{
		{
			Topic: c.ImagesTopic, Subscription: c.ImagesTopic + "-compress",
			Endpoint:    PushEndpoint(hostURL, functions.FnCompress, c.Project, c.ImagesTopic),
			AckDeadline: (120 + 60) * time.Second, MinBackoff: 10 * time.Second, MaxBackoff: 300 * time.Second,
			DeadLetterTopic: c.DeadLetterTopic, MaxDeliveryAttempts: 9,
		},
		{
			Topic: c.DeadLetterTopic, Subscription: c.DeadLetterTopic + "-record",
			Endpoint:    PushEndpoint(hostURL, functions.FnDeadLetter, c.Project, c.DeadLetterTopic),
			AckDeadline: (60 + 60) * time.Second, MinBackoff: time.Second, MaxBackoff: 60 * time.Second,
		},
	}}
}

// FastRetries returns w with every dead-letter policy at Pub/Sub's fewest
// deliveries (5) and retries 1 s to 60 s apart, as tests that wait for
// redeliveries and dead letters need: production's policy dead-letters an
// image 20 minutes after its first delivery (about 5 on the emulator,
// which caps its delays near a minute); this one within about 15 s.
func FastRetries(w Wiring) Wiring {
	pushes := make([]Push, len(w.Pushes))
	for i, p := range w.Pushes {
		if p.DeadLetterTopic != "" {
			p.MinBackoff, p.MaxBackoff, p.MaxDeliveryAttempts = time.Second, 60*time.Second, 5
		}
		pushes[i] = p
	}
	w.Pushes = pushes
	return w
}

// Wire creates what is missing: topics, push subscriptions, bucket and
// queue. Existing resources are left as they are, so Wire may run at every
// start.
func Wire(ctx context.Context, w Wiring) error {
	c := w.Config
	ps, err := pubsub.NewClient(ctx, c.Project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	defer ps.Close()
	topic := func(id string) string { return "projects/" + c.Project + "/topics/" + id }
	for _, p := range w.Pushes {
		for _, t := range []string{p.Topic, p.DeadLetterTopic} {
			if t == "" {
				continue
			}
			if _, err := ps.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic(t)}); ignoreExists(err) != nil {
				return fmt.Errorf("pubsub.CreateTopic %s: %w", t, err)
			}
		}
		sub := &pubsubpb.Subscription{
			Name:               "projects/" + c.Project + "/subscriptions/" + p.Subscription,
			Topic:              topic(p.Topic),
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: p.Endpoint},
			AckDeadlineSeconds: int32(p.AckDeadline / time.Second),
		}
		if p.MinBackoff > 0 || p.MaxBackoff > 0 {
			sub.RetryPolicy = &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(p.MinBackoff), MaximumBackoff: durationpb.New(p.MaxBackoff)}
		}
		if p.DeadLetterTopic != "" {
			sub.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{DeadLetterTopic: topic(p.DeadLetterTopic), MaxDeliveryAttempts: int32(p.MaxDeliveryAttempts)}
		}
		_, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, sub)
		if status.Code(err) == codes.AlreadyExists {
			// A host started again: point the subscription at it (its
			// address may have changed).
			err = ps.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{
				Subscription: sub.Name, PushConfig: sub.PushConfig})
		}
		if err != nil {
			return fmt.Errorf("pubsub.CreateSubscription %s: %w", p.Subscription, err)
		}
	}

	gcs, err := storage.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("storage.NewClient: %w", err)
	}
	defer gcs.Close()
	for _, b := range []string{c.Bucket, c.PrivateBucket} {
		if err := gcs.Bucket(b).Create(ctx, c.Project, nil); err != nil && !bucketExists(err) {
			return fmt.Errorf("storage.BucketHandle.Create %s: %w", b, err)
		}
	}

	tc, err := tasks.NewClient(ctx, c.TasksEmulatorHost)
	if err != nil {
		return err
	}
	defer tc.Close()
	// UpdateQueue creates a missing queue and brings an existing one to
	// the configured retry policy.
	q := &cloudtaskspb.Queue{Name: c.QueueName(), RetryConfig: &cloudtaskspb.RetryConfig{
		MaxAttempts: int32(c.WebhookMaxAttempts), MinBackoff: durationpb.New(c.WebhookMinBackoff),
		MaxBackoff: durationpb.New(c.WebhookMaxBackoff), MaxDoublings: int32(c.WebhookMaxDoublings),
	}}
	if _, err := tc.UpdateQueue(ctx, &cloudtaskspb.UpdateQueueRequest{Queue: q}); err != nil {
		return fmt.Errorf("cloudtasks.UpdateQueue: %w", err)
	}
	return nil
}

// Unwire deletes the subscriptions Wire made, so an emulator that outlives
// a test run does not keep pushing its leftovers to an endpoint that is
// gone (the Pub/Sub emulator retries them forever, slowing every other
// subscription).
func Unwire(ctx context.Context, w Wiring) error {
	ps, err := pubsub.NewClient(ctx, w.Config.Project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	defer ps.Close()
	var errs []error
	for _, p := range w.Pushes {
		err := ps.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{
			Subscription: "projects/" + w.Config.Project + "/subscriptions/" + p.Subscription})
		if err != nil && status.Code(err) != codes.NotFound {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PushEndpoint is the URL a local push subscription delivers to: the
// function's push route followed by the topic, which functions-framework-go
// reads into the event's source.
func PushEndpoint(hostURL, function, project, topicID string) string {
	return hostURL + functions.PushPath(function) + "projects/" + project + "/topics/" + topicID
}

func ignoreExists(err error) error {
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

func bucketExists(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// LocalDefaults sets what a local host needs and a developer should not
// have to: the webhook delivery URL on this host, the development signing
// secret and link key, the identity the webhook tasks carry (the Cloud Tasks emulator
// forwards its token as Cloud Run does, and deliverWebhook checks it), and
// fetches from loopback (test image servers, receivers). Variables already
// set are kept.
func LocalDefaults(hostURL string) {
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	for k, v := range map[string]string{
		"IMGPIPE_WEBHOOK_DELIVERY_URL":  hostURL + "/" + functions.FnDeliver,
		"IMGPIPE_SWEEP_URL":             hostURL + "/" + functions.FnSweep,
		"IMGPIPE_WEBHOOK_SECRETS":       config.DevWebhookSecret,
		"IMGPIPE_VIEW_LINK_KEYS":        config.DevViewLinkKey,
		"IMGPIPE_TASKS_SERVICE_ACCOUNT": "imgpipe-tasks@" + project + ".iam.gserviceaccount.com",
		"IMGPIPE_ALLOW_LOOPBACK":        "true",
	} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}

// DevKey creates an API key for a local stack and returns its secret.
func DevKey(ctx context.Context, project, name string) (string, error) {
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return "", fmt.Errorf("firestore.NewClient: %w", err)
	}
	defer fs.Close()
	secret, _, err := (&access.Keys{FS: fs}).Create(ctx, name, 6000, 1_000_000)
	return secret, err
}

// StartHost serves every registered function on addr ("127.0.0.1:0" picks a
// free port) through functions-framework-go, FUNCTION_TARGET unset, plus the
// local routes and the wiring probes, and returns the base URL once it
// accepts connections. The server runs until the process exits:
// functions-framework-go offers no shutdown.
func StartHost(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("net.SplitHostPort: %w", err)
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("net.Listen: %w", err)
		}
		port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	if err := functions.RegisterLocalRoutes(ctx); err != nil {
		return "", err
	}
	if err := registerProbes(ctx); err != nil {
		return "", err
	}
	served := make(chan error, 1)
	go func() { served <- funcframework.StartHostPort(host, port) }()
	base := "http://" + net.JoinHostPort(host, port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-served:
			return "", fmt.Errorf("funcframework.StartHostPort: %w", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 200*time.Millisecond); err == nil {
			c.Close()
			return base, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", errors.New("function host did not start listening within 10s")
}
