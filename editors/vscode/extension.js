// codeloop for VS Code: starts `codeloop lsp` (with --shared by default, so every window shares one engine)
// and lets vscode-languageclient wire inline completion (ghost text, LSP 3.18 textDocument/inlineCompletion),
// completion and chat. A status-bar item shows the state (ready / generating / checked / off); a click
// turns suggestions on or off.
'use strict';
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

const SECTION = 'codeloop';
const EXTENSION_ONLY = new Set(['serverCommand', 'shared']);  // read here, never sent to the server
const CHECK_RESULT = 'codeloop/checkResult';

/** Tells the server this client renders codeloop/checkResult (so it sends no hint diagnostic). */
const CHECK_RESULT_FEATURE = {
  fillClientCapabilities(capabilities) {
    capabilities.experimental = { ...(capabilities.experimental || {}), codeloop: { checkResult: true } };
  },
  initialize() {},
  getState() { return { kind: 'static' }; },
  clear() {},
};

let client;
let status;
let pending = 0;
let lastCheck = null;  // {status, passed, total, summary} of codeloop/checkResult for the latest suggestion

/** Every server setting of package.json, as initializationOptions (`security.copyleft` nested). */
function serverSettings(context) {
  const config = vscode.workspace.getConfiguration(SECTION);
  const out = {};
  for (const key of Object.keys(context.extension.packageJSON.contributes.configuration.properties)) {
    const name = key.slice(SECTION.length + 1);
    if (EXTENSION_ONLY.has(name)) continue;
    const path = name.split('.');
    let node = out;
    for (const part of path.slice(0, -1)) node = node[part] = node[part] || {};
    node[path[path.length - 1]] = config.get(name);
  }
  return out;
}

/** serverCommand, plus `--shared` (and `--model`) unless an engine URL is set or the user wrote it. */
function serverCommand() {
  const config = vscode.workspace.getConfiguration(SECTION);
  const [command, ...args] = config.get('serverCommand');
  if (config.get('shared') && !config.get('engineUrl') && !args.includes('--shared')
      && !args.includes('--engine-url')) {
    args.push('--shared');
    if (config.get('model') && !args.includes('--model')) args.push('--model', config.get('model'));
  }
  return { command, args };  // stdio; no `transport`, which would append --stdio
}

function render() {
  const enabled = vscode.workspace.getConfiguration(SECTION).get('enable');
  if (!enabled) {
    status.text = '$(circle-slash) codeloop off';
    status.tooltip = 'codeloop suggestions are off: click to turn them on';
  } else if (pending > 0) {
    status.text = '$(sync~spin) codeloop';
    status.tooltip = 'codeloop is generating a suggestion';
  } else if (lastCheck && lastCheck.status === 'passed') {
    status.text = `$(pass) codeloop checked ✓ ${lastCheck.passed}/${lastCheck.total}`;
    status.tooltip = `${lastCheck.summary} (click to turn suggestions off)`;
  } else if (lastCheck && lastCheck.status === 'pending') {
    status.text = '$(beaker) codeloop checking';
    status.tooltip = lastCheck.summary;
  } else if (lastCheck) {  // failed, check_failed
    status.text = `$(warning) codeloop ${lastCheck.passed}/${lastCheck.total}`;
    status.tooltip = lastCheck.summary;
  } else {
    status.text = '$(check) codeloop';
    status.tooltip = 'codeloop is ready: click to turn suggestions off';
  }
}

async function trackGenerating(work) {
  pending += 1;
  lastCheck = null;
  render();
  try {
    return await work();
  } finally {
    pending -= 1;
    render();
  }
}

function start(context) {
  const clientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(context),
    synchronize: { configurationSection: SECTION },
    outputChannelName: 'codeloop',
    middleware: {
      provideInlineCompletionItems: (document, position, ctx, token, next) =>
        trackGenerating(() => next(document, position, ctx, token)),
    },
  };
  client = new LanguageClient('codeloop', 'codeloop', serverCommand(), clientOptions);
  client.registerFeature(CHECK_RESULT_FEATURE);
  client.onNotification(CHECK_RESULT, (params) => {
    lastCheck = { status: String(params.status || 'pending'), passed: Number(params.passed) || 0,
                  total: Number(params.total) || 0, summary: String(params.summary || '') };
    render();
  });
  return client.start().then(render);
}

async function toggle() {
  const config = vscode.workspace.getConfiguration(SECTION);
  await config.update('enable', !config.get('enable'), vscode.ConfigurationTarget.Global);
  render();
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
  status = vscode.window.createStatusBarItem('codeloop.status', vscode.StatusBarAlignment.Right, 100);
  status.name = 'codeloop';
  status.command = 'codeloop.toggle';
  status.text = '$(loading~spin) codeloop';
  status.tooltip = 'codeloop is starting';
  status.show();
  context.subscriptions.push(
    status,
    vscode.commands.registerCommand('codeloop.ask', ask),
    vscode.commands.registerCommand('codeloop.toggle', toggle),
    vscode.commands.registerCommand('codeloop.restart', async () => { if (client) await client.stop(); await start(context); }),
    vscode.workspace.onDidChangeConfiguration((e) => { if (e.affectsConfiguration(SECTION)) render(); }),
  );
  return start(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
