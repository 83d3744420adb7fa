using System.Runtime.InteropServices;

namespace Dllm.Cli.Commands;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM for the training verbs. The first signal asks the trainer to stop after the
/// step it is on, which then writes a checkpoint atomically; a second signal aborts at once, the way a
/// second Ctrl-C does everywhere else. The exit code follows the shell's 128 + signal convention.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly TextWriter _err;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _count;

    public StopSignals(TextWriter err, CancellationToken outer = default)
    {
        _err = err;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            _registrations.Add(PosixSignalRegistration.Create(signal, Handle));
    }

    public CancellationToken Token => _stop.Token;

    /// <summary>The first signal received, if any.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>130 after Ctrl-C, 143 after SIGTERM (128 + the signal number), 1 when stopped otherwise.</summary>
    public int ExitCode => Received switch
    {
        PosixSignal.SIGINT => 130,
        PosixSignal.SIGTERM => 143,
        _ => 1,
    };

    private void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            context.Cancel = true;   // keep running: the trainer stops at the end of its step
            Received = context.Signal;
            _err.WriteLine($"{(context.Signal == PosixSignal.SIGINT ? "Ctrl-C" : "SIGTERM")}: finishing this step, then saving a checkpoint (Ctrl-C again aborts without saving)");
            _err.Flush();
            _stop.Cancel();
            return;
        }
        // A second signal: the default action, which ends the process now.
        context.Cancel = false;
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _stop.Dispose();
    }
}
