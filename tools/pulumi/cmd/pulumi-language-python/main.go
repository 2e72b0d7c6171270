// Command pulumi-language-python is kdrill's Python language host for the Pulumi engine.
//
// Why kdrill has its own: Pulumi's host lives in the Go module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which the Go module
// proxy this project can reach does not serve (every version, pseudo-versions included,
// answers 403 "not available"). The engine only needs a gRPC LanguageRuntime server that
// starts the Python program, and the program side of that contract ships with the pinned
// sdk/v3 module: python/cmd/pulumi-language-python-exec, the shim that connects the Python
// SDK to the engine's resource monitor. tools/setup-pulumi.sh installs that shim next to
// this binary. This host implements what `pulumi up/preview/destroy` and the Automation API
// use, and runs Python plugins -- CrossGuard policy packs (`--policy-pack policies`) and
// Python provider plugins -- through RunPlugin (runplugin.go); it does not scaffold
// projects, generate code, install dependencies (tools/bootstrap.sh owns .venv) or report
// required plugins (they load on demand).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Exit code with which pulumi-language-python-exec says it has already shown the user an
// actionable error; the engine should then stop without adding its own message.
const execShownErrorExitCode = 32

func main() {
	tracing := flag.String("tracing", "", "Zipkin-compatible tracing endpoint, passed to the program")
	executor := flag.String("use-executor", "",
		"Path of pulumi-language-python-exec (default: next to this binary, then $PATH)")
	_ = flag.String("root", "", "Project root directory (accepted for compatibility, unused)")
	flag.Parse()
	logging.InitLogging(false, 0, false)

	shim, err := findExecShim(*executor)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python:", err)
		os.Exit(1)
	}
	host := &pythonHost{shim: shim, tracing: *tracing}
	if args := flag.Args(); len(args) > 0 {
		host.engineAddress = args[0]
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python: could not start RPC server:", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-python: RPC server stopped:", err)
		os.Exit(1)
	}
}

// findExecShim locates pulumi-language-python-exec: the flag, then beside the (resolved)
// executable, then beside argv[0], then on $PATH.
func findExecShim(given string) (string, error) {
	const name = "pulumi-language-python-exec"
	if given != "" {
		return given, nil
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			dirs = append(dirs, filepath.Dir(resolved))
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, filepath.Dir(os.Args[0]))
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("could not find %s beside this binary or on $PATH", name)
}

type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	shim    string
	tracing string

	mu            sync.Mutex
	engineAddress string
}

func (h *pythonHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	h.engineAddress = req.GetEngineAddress()
	h.mu.Unlock()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// GetRequiredPlugins reports nothing: plugins are loaded when a resource needs them. (Pulumi's
// own host lists every installed pulumi_* package, which here would ask the engine to download
// the AWS and Kubernetes plugins that this machine cannot fetch.)
func (h *pythonHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *pythonHost) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *pythonHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *pythonHost) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

// InstallDependencies does nothing: tools/bootstrap.sh creates and fills the virtualenv.
func (h *pythonHost) InstallDependencies(
	_ *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return stream.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("kdrill: Python dependencies are installed by tools/bootstrap.sh\n"),
	})
}

func (h *pythonHost) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	py, _, err := pythonFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(py, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", py, err)
	}
	ver := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "Python"))
	return &pulumirpc.AboutResponse{Executable: py, Version: ver}, nil
}

// pythonFor picks the interpreter for a program: the `virtualenv` runtime option of
// Pulumi.yaml (relative to the project root), else $PULUMI_PYTHON_CMD, else python3 on $PATH.
// It also returns the virtualenv directory, if any.
func pythonFor(info *pulumirpc.ProgramInfo) (string, string, error) {
	if info != nil && info.GetOptions() != nil {
		if v, ok := info.GetOptions().AsMap()["virtualenv"].(string); ok && v != "" {
			venv := v
			if !filepath.IsAbs(venv) {
				venv = filepath.Join(info.GetRootDirectory(), venv)
			}
			py := filepath.Join(venv, "bin", "python")
			if _, err := os.Stat(py); err != nil {
				return "", "", fmt.Errorf("the runtime option virtualenv (Pulumi.yaml, PulumiPolicy.yaml) points at %q, "+
					"which has no bin/python; run tools/bootstrap.sh", venv)
			}
			return py, venv, nil
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd, "", nil
	}
	for _, name := range []string{"python3", "python"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, "", nil
		}
	}
	return "", "", errors.New("no python3 on $PATH; set PULUMI_PYTHON_CMD or runtime.options.virtualenv")
}

func (h *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	py, venv, err := pythonFor(info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	h.mu.Lock()
	engine := h.engineAddress
	h.mu.Unlock()

	pwd, program, root := req.GetPwd(), req.GetProgram(), ""
	if info != nil {
		if info.GetProgramDirectory() != "" {
			pwd = info.GetProgramDirectory()
		}
		if info.GetEntryPoint() != "" {
			program = info.GetEntryPoint()
		}
		root = info.GetRootDirectory()
	}
	if program == "" {
		program = "." // runs __main__.py of the program directory
	}

	args := []string{"-u", h.shim}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", engine)
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", pwd)
	add("root_directory", root)
	add("dry_run", fmt.Sprintf("%v", req.GetDryRun()))
	add("parallel", fmt.Sprint(req.GetParallel()))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config := req.GetConfig()
	if config == nil {
		config = map[string]string{} // the Python SDK expects an object, never null
	}
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("serialising config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	keys, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serialising secret config keys: %w", err)
	}

	env := os.Environ()
	if venv != "" {
		env = append(env, "VIRTUAL_ENV="+venv,
			"PATH="+filepath.Join(venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	env = append(env, "PULUMI_CONFIG="+string(cfg), "PULUMI_CONFIG_SECRET_KEYS="+string(keys))

	logging.V(5).Infof("pulumi-language-python: launching %s %s", py, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = pwd
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == execShownErrorExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("problem executing program (could not run %s): %v", py, err),
		}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin: see runplugin.go.
