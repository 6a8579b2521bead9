// Reads a JSON list of Markdown documents on stdin; writes a JSON list of their HTML, as
// marked renders them with GitHub-flavoured Markdown (its default, and VS Code's).
import { marked } from "marked";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const documents = JSON.parse(input);
  const html = documents.map((doc) => marked.parse(doc, { gfm: true, async: false }));
  process.stdout.write(JSON.stringify(html));
});
