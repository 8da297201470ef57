/* The one source of the layer checks (cmake/layers.cmake): each check is a shared object made of a
 * layer's whole archive linked against the layers below it with no undefined symbols allowed, so it
 * needs no code of its own. */
int pt__layer_check_anchor;
