using Dllm.Training;
using Spectre.Console;

namespace Dllm.Cli.Commands;

/// <summary>
/// Shows training progress: a Spectre progress bar (step, loss, tokens/s, block size, ETA) on a
/// terminal, plain log lines otherwise (CI logs, pipes). Messages and evaluations always print.
/// </summary>
internal sealed class TrainingProgressView(TextWriter output, bool interactive) : ITrainingObserver
{
    private ProgressTask? _task;
    private long _total;
    private long _start;
    private long _printEvery = 1;
    private double _lastEval = double.NaN;
    private string _metric = "";

    /// <summary>Runs <paramref name="work"/> inside a live progress display when interactive.</summary>
    public T Run<T>(string title, Func<T> work)
    {
        if (!interactive) return work();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask(Markup.Escape(title), autoStart: true, maxValue: 1);
                result = work();
            });
        _task = null;
        return result;
    }

    public void Started(long startStep, long totalSteps, string plan)
    {
        _total = totalSteps;
        _start = startStep;
        _printEvery = Math.Max(1, totalSteps / 40);
        _lastEval = double.NaN;   // a new job: the previous job's validation score no longer applies
        if (_task is not null)
        {
            _task.MaxValue = totalSteps;
            _task.Value = startStep;
        }
        else output.WriteLine($"training ({plan}): steps {startStep}..{totalSteps}");
    }

    public void Step(StepMetrics m)
    {
        var text = $"step {m.Step + 1}/{_total}  loss {m.Loss:F4}  B={m.BlockSize}  lr {m.LearningRate:G3}  {m.TokensPerSecond:F0} tok/s" +
                   (double.IsNaN(_lastEval) ? "" : $"  {_metric} {_lastEval:F4}");
        if (_task is not null)
        {
            _task.Value = m.Step + 1;
            _task.Description = Markup.Escape(text);
        }
        // The first step prints too: it shows at once that training runs, and at what speed.
        else if ((m.Step + 1) % _printEvery == 0 || m.Step + 1 == _total || m.Step == _start)
        {
            // Seconds count from this process's start: a resumed run has done Step + 1 - start steps in them.
            var eta = m.Step + 1 < _total ? $"  eta {TimeSpan.FromSeconds(m.Seconds / (m.Step + 1 - _start) * (_total - m.Step - 1)):hh\\:mm\\:ss}" : "";
            output.WriteLine(text + eta);
        }
    }

    public void Evaluated(long step, string metric, double value)
    {
        (_lastEval, _metric) = (value, metric);
        Write($"step {step}: {metric} {value:F4} (ppl bound {Math.Exp(value):F2})");
    }

    public void Checkpointed(long step, string path) => Write($"checkpoint: {path}");

    public void Message(string text) => Write(text);

    private void Write(string text)
    {
        if (_task is not null) AnsiConsole.MarkupLine(Markup.Escape(text));
        else output.WriteLine(text);
    }
}
