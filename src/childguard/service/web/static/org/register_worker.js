// Owns the registration worker: photos in, signatures out, one at a time, off the page's thread.
/**
 * Messages in: {id, file, name}. Messages out: {id, started: true}, then {id, ok: true, photo,
 * keypoints} or {id, ok: false, error}, and once {ready: true} or {ready: false, error} after OpenCV.js
 * loaded. The worker never makes a network request except loading its own scripts.
 */

import { photoSignature } from "./signature.js";

const cvReady = import("/org/static/vendor/opencv.js")
  .then((module) => module.default())
  .then(
    (cv) => {
      self.postMessage({ ready: true });
      return cv;
    },
    (err) => {
      self.postMessage({ ready: false, error: String(err) });
      throw err;
    },
  );

let queue = Promise.resolve();

self.onmessage = (event) => {
  const { id, file, name } = event.data;
  queue = queue.then(async () => {
    try {
      const cv = await cvReady;
      self.postMessage({ id, started: true });
      const { photo, keypoints } = await photoSignature(cv, file, name);
      self.postMessage({ id, ok: true, photo, keypoints });
    } catch (err) {
      self.postMessage({ id, ok: false, error: err && err.message ? err.message : String(err) });
    }
  });
};
