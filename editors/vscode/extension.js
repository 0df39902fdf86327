// codeloop for VS Code: starts `codeloop lsp` and lets vscode-languageclient wire inline completion
// (ghost text, LSP 3.18 textDocument/inlineCompletion), completion and the codeloop.chat command.
'use strict';
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function settings() {
  const c = vscode.workspace.getConfiguration('codeloop');
  return {
    enable: c.get('enable'), model: c.get('model'), engineUrl: c.get('engineUrl'),
    maxTokens: c.get('maxTokens'), maxLines: c.get('maxLines'), contextBudgetChars: c.get('contextBudgetChars'),
  };
}

function start(context) {
  const [command, ...args] = vscode.workspace.getConfiguration('codeloop').get('serverCommand');
  const serverOptions = { command, args };  // stdio; no `transport`, which would append --stdio
  const clientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: settings(),
    synchronize: { configurationSection: 'codeloop' },
    outputChannelName: 'codeloop',
  };
  client = new LanguageClient('codeloop', 'codeloop', serverOptions, clientOptions);
  return client.start();
}

async function ask() {
  const editor = vscode.window.activeTextEditor;
  const question = await vscode.window.showInputBox({ prompt: 'Ask codeloop' });
  if (!question || !client) return;
  const args = { messages: [{ role: 'user', content: question }] };
  if (editor) {
    args.textDocument = { uri: editor.document.uri.toString() };
    if (!editor.selection.isEmpty) args.selection = client.code2ProtocolConverter.asRange(editor.selection);
  }
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'codeloop', cancellable: true },
    (_progress, token) => client.sendRequest('codeloop/chat', args, token));
  const doc = await vscode.workspace.openTextDocument({ content: answer.text, language: 'markdown' });
  await vscode.window.showTextDocument(doc, vscode.ViewColumn.Beside);
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('codeloop.ask', ask),
    vscode.commands.registerCommand('codeloop.restart', async () => { if (client) await client.stop(); await start(context); }),
  );
  return start(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
