package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// How long a plugin has to exit after the engine is done with it (SIGTERM) before SIGKILL.
const pluginStopGrace = 5 * time.Second

// RunPlugin runs a Python plugin for the engine: a CrossGuard policy pack (a directory with
// PulumiPolicy.yaml, `runtime: python`, e.g. `pulumi preview --policy-pack policies`) or a
// Python provider plugin (PulumiPlugin.yaml). The engine finds this host by the yaml's
// runtime name and sends:
//
//   - Info: the plugin's directory (root and program directory) and the yaml's runtime
//     options -- `virtualenv` (relative to that directory) picks the interpreter, as for a
//     program (pythonFor);
//   - Args: the plugin's arguments, the engine's address first;
//   - Env: the whole environment the plugin is to get (the engine's own plus what it adds);
//   - Pwd: the working directory (the project's).
//
// The plugin runs as `python -u <dir> ARGS...`, i.e. its __main__.py. Its stdout and stderr
// go back on the stream as they come -- the first stdout line is the gRPC port the engine
// dials -- and, last, its exit code. When the engine is done with the plugin it cancels the
// call: the plugin gets SIGTERM, then SIGKILL after pluginStopGrace.
//
// Not supported (an error says so): packaged plugins without __main__.py (upstream runs
// those through `python -m pulumi.run.plugin`), and attaching a debugger.
func (h *pythonHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	info := req.GetInfo()
	if info == nil {
		return status.Error(codes.InvalidArgument, "RunPlugin: the request has no program info")
	}
	kind := req.GetKind()
	if kind == "" {
		kind = "plugin"
	}
	dir := info.GetProgramDirectory()
	if dir == "" {
		dir = info.GetRootDirectory()
	}
	if req.GetAttachDebugger() {
		return status.Errorf(codes.Unimplemented,
			"kdrill's python host cannot attach a debugger to the %s in %s", kind, dir)
	}
	if st, err := os.Stat(filepath.Join(dir, "__main__.py")); err != nil || st.IsDir() {
		return status.Errorf(codes.FailedPrecondition,
			"the %s in %s has no __main__.py; kdrill's python host runs plugins that are a "+
				"directory with __main__.py (packaged plugins run by pulumi.run.plugin are not supported)",
			kind, dir)
	}
	py, venv, err := pythonFor(info)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "the %s in %s: %v", kind, dir, err)
	}

	args := append([]string{"-u", dir}, req.GetArgs()...)
	env := pluginEnv(req.GetEnv(), venv)

	ctx := server.Context()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = pluginStopGrace

	out := &streamSender{server: server}
	cmd.Stdout = &streamWriter{out: out, stderr: false}
	cmd.Stderr = &streamWriter{out: out, stderr: true}

	logging.V(5).Infof("pulumi-language-python: RunPlugin(%s) %s %s in %s",
		kind, py, strings.Join(args, " "), cmd.Dir)
	runErr := cmd.Run()

	code := 0
	if runErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(runErr, &exitErr) {
			return status.Errorf(codes.Internal,
				"could not run the %s in %s with %s: %v", kind, dir, py, runErr)
		}
		code = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if ctx.Err() != nil {
		// The engine cancelled the call (it is done with the plugin): nobody reads the code.
		return status.FromContextError(ctx.Err()).Err()
	}
	//nolint:gosec // exit codes fit in 8 bits
	return out.send(&pulumirpc.RunPluginResponse{
		Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)},
	})
}

// pluginEnv is the environment the engine sent (else this host's own), with the virtualenv
// (if any) activated: VIRTUAL_ENV set and its bin first on PATH. Later entries win in
// os/exec, so the additions are appended.
func pluginEnv(sent []string, venv string) []string {
	env := append([]string(nil), sent...)
	if len(env) == 0 {
		env = os.Environ()
	}
	env = append(env, "PYTHONUNBUFFERED=1")
	if venv == "" {
		return env
	}
	path := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return append(env, "VIRTUAL_ENV="+venv,
		"PATH="+filepath.Join(venv, "bin")+string(os.PathListSeparator)+path)
}

// streamSender serialises Send on the RunPlugin stream: os/exec copies stdout and stderr
// in two goroutines, and a gRPC stream must not be sent on from two at once.
type streamSender struct {
	mu     sync.Mutex
	server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]
}

func (s *streamSender) send(msg *pulumirpc.RunPluginResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server.Send(msg)
}

type streamWriter struct {
	out    *streamSender
	stderr bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	msg := &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}}
	if w.stderr {
		msg = &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}}
	}
	if err := w.out.send(msg); err != nil {
		return 0, fmt.Errorf("RunPlugin stream: %w", err)
	}
	return len(p), nil
}
