package taskstest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	queueNameRE = regexp.MustCompile(`^projects/([a-z][a-z0-9:.-]{0,99})/locations/([a-z0-9-]{1,63})/queues/([A-Za-z0-9-]{1,100})$`)
	taskNameRE  = regexp.MustCompile(`^(projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks/([A-Za-z0-9_-]{1,500})$`)
	locationRE  = regexp.MustCompile(`^projects/([a-z][a-z0-9:.-]{0,99})/locations/([a-z0-9-]{1,63})$`)
)

// checkLocation validates "projects/P/locations/L".
func checkLocation(parent string) error {
	if !locationRE.MatchString(parent) {
		return status.Errorf(codes.InvalidArgument, "invalid location name %q: want projects/PROJECT_ID/locations/LOCATION_ID", parent)
	}
	return nil
}

// checkQueueName validates "projects/P/locations/L/queues/Q".
func checkQueueName(name string) error {
	if !queueNameRE.MatchString(name) {
		return status.Errorf(codes.InvalidArgument, "invalid queue name %q: want projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID with QUEUE_ID of [A-Za-z0-9-]{1,100}", name)
	}
	return nil
}

// splitTaskName validates a task name and returns its queue name and task ID.
func splitTaskName(name string) (queue, id string, err error) {
	m := taskNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid task name %q: want QUEUE_NAME/tasks/TASK_ID with TASK_ID of [A-Za-z0-9_-]{1,500}", name)
	}
	if err := checkQueueName(m[1]); err != nil {
		return "", "", err
	}
	return m[1], m[2], nil
}

// shortID returns the last path segment of a resource name.
func shortID(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// newTaskID returns a random numeric ID, the form Cloud Tasks itself gives unnamed tasks.
func newTaskID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1, 10)
}

// pageToken encodes and decodes an offset into a sorted listing.
func parsePageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(tok)
	if err != nil || n < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "invalid page_token %q", tok)
	}
	return n, nil
}

// page cuts one page out of n sorted items and returns [lo,hi) and the next token.
func page(n int, size int32, token string) (lo, hi int, next string, err error) {
	lo, err = parsePageToken(token)
	if err != nil {
		return 0, 0, "", err
	}
	if size < 0 {
		return 0, 0, "", status.Errorf(codes.InvalidArgument, "page_size must not be negative")
	}
	if size == 0 || size > 1000 {
		size = 1000
	}
	if lo > n {
		lo = n
	}
	hi = lo + int(size)
	if hi >= n {
		return lo, n, "", nil
	}
	return lo, hi, strconv.Itoa(hi), nil
}
