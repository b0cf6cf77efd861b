// SQL console: Ctrl+Enter (or Cmd+Enter) in the editor runs the query. The form works without this.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const editor = document.getElementById("sql-editor");
  if (!editor) return;
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      editor.form.requestSubmit();
    }
  });
});
