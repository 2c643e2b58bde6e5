// The archc extension: .arch files get the TextMate grammar (syntaxes/) and the language server
// `archc lsp` (diagnostics, hover, inlay hints, completion, definitions, formatting, quick fixes).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function settings() {
  const config = vscode.workspace.getConfiguration("archc");
  return { variant: config.get("variant"), set: config.get("set"), inlayHints: config.get("inlayHints") };
}

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("archc").get("command") || ["archc", "lsp"];
  const server = { command, args };
  client = new LanguageClient("archc", "archc", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "arch" }, { scheme: "untitled", language: "arch" }],
    initializationOptions: settings(),
    synchronize: {
      // Settings changes reach the server as didChangeConfiguration; files changed outside the editor as watched files.
      configurationSection: "archc",
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.arch"),
    },
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `archc: could not start "${[command, ...args].join(" ")}" (${error.message}). ` +
      "Install it with pip install 'archc[lsp]', or set archc.command to where it is.");
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
