return Dllm.Cli.CliApp.Run(args);
