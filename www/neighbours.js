// The images of this visit nearest to the shown one, by Euclidean distance between their
// feature vectors (the model's feature layer, fc7 in AlexNet), as in the paper's Figure 4.
import { $, el } from './ui.js';

function distance(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

// Lists the six nearest of `items` to `current`: only features of the same model
// (`generation`) are compared. A click on one calls `select` with it.
export function renderNeighbours({ current, items, generation, select }) {
  const box = $('neighbours');
  const others = current && current.generation === generation
    ? items.filter((i) => i !== current && i.feature && i.generation === generation)
    : [];
  if (others.length === 0) {
    box.replaceChildren(el('li', { className: 'empty', textContent: current
      ? 'Classify more images: the nearest ones by fc7 distance show here.'
      : 'No image yet.' }));
    return;
  }
  const ranked = others.map((i) => ({ item: i, d: distance(current.feature, i.feature) }))
    .sort((a, b) => a.d - b.d).slice(0, 6);
  box.replaceChildren(...ranked.map(({ item, d }) => {
    const li = el('li', { title: `click to show ${item.name}` },
      el('img', { src: item.url, alt: item.name }),
      el('span', { className: 'name', textContent: item.name }),
      el('span', { className: 'dist', textContent: `distance ${d.toFixed(2)}` }));
    li.dataset.testid = 'neighbour';
    li.addEventListener('click', () => select(item));
    return li;
  }));
}
