;;; codeloop.el --- codeloop language server through eglot  -*- lexical-binding: t; -*-
;; Emacs 28 + eglot (Debian: apt install emacs-nox elpa-eglot), Emacs 29+ has eglot built in.
;; Load with (load "/path/to/editors/emacs/codeloop.el") then M-x eglot in a code buffer.
;; Completion: completion-at-point (C-M-i), or company / corfu if you use them.

(require 'eglot)

(defgroup codeloop nil "codeloop code assistant." :group 'tools)

(defcustom codeloop-command '("codeloop" "lsp")
  "Command that starts the codeloop language server."
  :type '(repeat string))

(defcustom codeloop-initialization-options '(:maxTokens 48)
  "Settings sent as initializationOptions (enable, model, engineUrl, maxTokens, ...)."
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
