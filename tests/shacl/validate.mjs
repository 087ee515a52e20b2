// Validate catalogue exports against the DCAT-AP 3.0.1 SHACL shapes, with a real SHACL
// engine (rdf-validate-shacl). Usage: node validate.mjs FILE... (.ttl: Turtle, .jsonld:
// JSON-LD). Prints one TAP line per file and every violation; exit 1 when any file has one.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import datasetFactory from '@rdfjs/dataset';
import jsonld from 'jsonld';
import { Parser } from 'n3';
import SHACLValidator from 'rdf-validate-shacl';

const here = dirname(fileURLToPath(import.meta.url));
const shapesDir = join(here, '..', 'fixtures', 'dcat-ap');

function parse(text, format) {
  return new Parser({ format }).parse(text);
}

async function load(file) {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.jsonld')) {
    // The export's @context is inline (prefixes only): nothing is fetched.
    const nquads = await jsonld.toRDF(JSON.parse(text), { format: 'application/n-quads' });
    return parse(nquads, 'N-Quads');
  }
  return parse(text, 'Turtle');
}

const shapes = datasetFactory.dataset([
  ...parse(readFileSync(join(shapesDir, 'shapes.ttl'), 'utf8'), 'Turtle'),
  ...parse(readFileSync(join(shapesDir, 'range.ttl'), 'utf8'), 'Turtle'),
]);
const validator = new SHACLValidator(shapes);
const violation = 'http://www.w3.org/ns/shacl#Violation';

let failed = 0;
let n = 0;
for (const file of process.argv.slice(2)) {
  n++;
  try {
    const quads = await load(file);
    const report = await validator.validate(datasetFactory.dataset(quads));
    const bad = report.results.filter((r) => r.severity && r.severity.value === violation);
    if (quads.length === 0 || bad.length > 0) {
      failed++;
      console.log(`not ok ${n} - ${file}: ${bad.length} SHACL violations in ${quads.length} triples`);
      for (const r of bad.slice(0, 20)) {
        const msg = r.message.map((m) => m.value).join(' ');
        console.log(`#   ${r.focusNode && r.focusNode.value} ${r.path && r.path.value}: ${msg}`);
      }
    } else {
      console.log(`ok ${n} - ${file}: DCAT-AP 3.0.1 shapes, 0 violations in ${quads.length} triples`);
    }
  } catch (e) {
    failed++;
    console.log(`not ok ${n} - ${file}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
