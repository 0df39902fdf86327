;;; emacs_complete.el --- batch Emacs + eglot drives codeloop (tests/lsp/test_editors.py)  -*- lexical-binding: t; -*-
;; Env: CODELOOP_REPO, CODELOOP_CMD (JSON list), CODELOOP_FILE, CODELOOP_LINE (1-based), CODELOOP_OUT.
(require 'json)
(setq codeloop-command (append (json-parse-string (getenv "CODELOOP_CMD") :array-type 'list) nil))
(setq codeloop-initialization-options '(:debounceMs 0))
(load (expand-file-name "editors/emacs/codeloop.el" (getenv "CODELOOP_REPO")))
(setq eglot-sync-connect 30)
(defun codeloop-test-write (alist)
  (with-temp-file (getenv "CODELOOP_OUT") (insert (json-encode alist))))
(condition-case err
    (progn
      (find-file (getenv "CODELOOP_FILE"))
      (python-mode)
      (apply #'eglot (eglot--guess-contact))
      (let ((server (eglot-current-server)))
        (goto-char (point-min))
        (forward-line (1- (string-to-number (getenv "CODELOOP_LINE"))))
        (end-of-line)
        (let* ((res (jsonrpc-request server :textDocument/completion (eglot--TextDocumentPositionParams)))
               (items (if (vectorp res) res (plist-get res :items)))
               (item (and (> (length items) 0) (aref items 0))))
          ;; completion-at-point with a single candidate inserts it, as a user's C-M-i would
          (let ((completion-auto-help nil)) (completion-at-point))
          (codeloop-test-write
           `((ok . t) (label . ,(plist-get item :label))
             (line . ,(buffer-substring-no-properties (line-beginning-position) (line-end-position))))))))
  (error (codeloop-test-write `((ok . :json-false) (error . ,(format "%S" err))))))
(kill-emacs 0)
