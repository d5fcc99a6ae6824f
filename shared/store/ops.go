package store

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Ops are the Firestore operations a Store's client made, counted at the
// client as Firestore bills them: a read per document a lookup or query
// returns (a lookup of a missing document, or a query with no result,
// counts one), a write per document a commit or batch writes.
type Ops struct {
	Reads, Writes int64
}

// opCounter counts one client's operations.
type opCounter struct {
	reads, writes atomic.Int64
}

func (c *opCounter) snapshot() Ops { return Ops{Reads: c.reads.Load(), Writes: c.writes.Load()} }

// options install the counting interceptors on a client. Against the
// emulator the client would use a connection it dialled itself, without
// them: the connection is dialled here instead, as the client dials it.
func (c *opCounter) options() ([]option.ClientOption, error) {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil {
			switch r := req.(type) {
			case *firestorepb.CommitRequest:
				c.writes.Add(int64(len(r.Writes)))
			case *firestorepb.BatchWriteRequest:
				c.writes.Add(int64(len(r.Writes)))
			}
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || !(strings.HasSuffix(method, "/BatchGetDocuments") || strings.HasSuffix(method, "/RunQuery")) {
			return s, err
		}
		return &countingStream{ClientStream: s, c: c, query: strings.HasSuffix(method, "/RunQuery")}, nil
	}
	if addr := os.Getenv("FIRESTORE_EMULATOR_HOST"); addr != "" {
		addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(emulatorOwner{}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
			grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
		if err != nil {
			return nil, fmt.Errorf("grpc.NewClient %s: %w", addr, err)
		}
		return []option.ClientOption{option.WithGRPCConn(conn)}, nil
	}
	return []option.ClientOption{
		option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(unary)),
		option.WithGRPCDialOption(grpc.WithChainStreamInterceptor(stream)),
	}, nil
}

// emulatorOwner is the credential the Firestore emulator takes from an
// administrator, which its security rules let through: what the client
// sends it.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }

// countingStream counts the documents a lookup or query stream returns.
type countingStream struct {
	grpc.ClientStream
	c     *opCounter
	query bool
	docs  int
	done  bool
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		if s.query && !s.done && s.docs == 0 {
			s.c.reads.Add(1) // a query that returns nothing is billed one read
		}
		s.done = true
		return err
	}
	switch r := m.(type) {
	case *firestorepb.BatchGetDocumentsResponse:
		if r.GetFound() != nil || r.GetMissing() != "" {
			s.c.reads.Add(1)
		}
	case *firestorepb.RunQueryResponse:
		if r.GetDocument() != nil {
			s.docs++
			s.c.reads.Add(1)
		}
	}
	return err
}
