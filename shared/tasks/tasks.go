// Package tasks is imgpipe's Cloud Tasks adapter. The official client reads
// no emulator variable, so NewClient dials CLOUDTASKS_EMULATOR_HOST itself
// (plain gRPC, no credentials) when the configuration names one.
package tasks

import (
	"context"
	"fmt"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
