// Asking first: a modal question before an action that cannot be undone
// (cancel an order, revoke a token). Focus starts on the safe answer.
import { h } from './dom.js';

/**
 * ask shows a modal dialog with title, text, a danger button labelled yes
 * and a safe one labelled no, and resolves true only when yes is pressed.
 * Focus goes back to opener (when still on the page) afterwards.
 */
export function ask({ title, text, yes, no = 'Keep it', opener }) {
  return new Promise((resolve) => {
    const titleId = `ask-${Math.random().toString(36).slice(2)}`;
    const yesBtn = h('button', { type: 'button', class: 'btn btn-danger', 'data-answer': 'yes' }, yes);
    const noBtn = h('button', { type: 'button', class: 'btn', 'data-answer': 'no' }, no);
    const dlg = h('dialog', { class: 'dialog ask', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('p', null, text),
      h('div', { class: 'actions dialog-actions' }, yesBtn, noBtn));
    let answer = false;
    yesBtn.addEventListener('click', () => { answer = true; dlg.close(); });
    noBtn.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected && !answer) opener.focus();
      resolve(answer);
    });
    document.body.append(dlg);
    dlg.showModal();
    noBtn.focus();
  });
}
