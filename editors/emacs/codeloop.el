;;; codeloop.el --- Self-hosted code completion and chat through eglot  -*- lexical-binding: t; -*-

;; Author: codeloop contributors
;; Maintainer: codeloop contributors
;; Version: 0.2.0
;; Package-Requires: ((emacs "28.1") (eglot "1.8"))
;; Keywords: tools, languages, convenience
;; SPDX-License-Identifier: Apache-2.0

;;; Commentary:

;; Registers the codeloop language server (`codeloop lsp --shared': every Emacs attaches to one background
;; engine) with eglot for the usual programming modes.  Emacs 29+ has eglot built in; on Emacs 28 install
;; it (Debian: apt install emacs-nox elpa-eglot).
;;
;; Install: M-x package-install-file RET /path/to/codeloop/editors/emacs/codeloop.el, or
;; (use-package codeloop :load-path "/path/to/codeloop/editors/emacs"), or (load ".../codeloop.el").
;; Then M-x eglot (or eglot-ensure from a mode hook) in a code buffer.
;; Completion: completion-at-point (C-M-i), or company / corfu if you use them.

;;; Code:

(require 'eglot)

(defgroup codeloop nil "codeloop code assistant." :group 'tools)

(defcustom codeloop-command '("codeloop" "lsp" "--shared")
  "Command that starts the codeloop language server.
With --shared every editor attaches to one background engine
\(one model in memory)."
  :type '(repeat string))

(defcustom codeloop-initialization-options nil
  "Settings sent as initializationOptions, e.g. (:maxTokens 48).
Names and defaults: editors/README.md (enable, model, engineUrl, ...)."
  :type 'plist)

(defclass codeloop-eglot-server (eglot-lsp-server) ()
  :documentation "The codeloop language server.")

(cl-defmethod eglot-initialization-options ((_server codeloop-eglot-server))
  codeloop-initialization-options)

(dolist (mode '(python-mode python-ts-mode js-mode typescript-mode go-mode rust-mode c-mode c++-mode sh-mode))
  (add-to-list 'eglot-server-programs
               `(,mode . (codeloop-eglot-server . ,codeloop-command))))

(provide 'codeloop)
;;; codeloop.el ends here
